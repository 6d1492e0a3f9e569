"""The endpoint: checks a request, reads its body within the limits, captures the feedback, answers JSON.

Framework-neutral: a request is a :class:`RequestHead` (method, path, headers, the peer's address)
and a way to read its body; every adapter (WSGI here, ASGI, Flask, Django, Starlette) turns its
framework's request into these and sends the :class:`EndpointResponse` back.
"""

from __future__ import annotations

import contextlib
import logging
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._api import capture_feedback, last_event_id, send_feedback
from .._attachment import Attachment
from .._context import get_client, get_isolation_scope
from .._feedback import FeedbackFields
from .._options import Options
from .._request_data import RequestData, from_wsgi_environ
from .._tracing import propagation_context_from_headers
from .._web import RequestScope, active_request
from ..exceptions import FeedbackError, FeedbackTimeoutError, InvalidFeedbackError, RateLimitedError
from ._form import STATIC_FILES, feedback_form_html, static_file
from ._limiter import AddressRateLimiter, client_key, retry_after
from ._options import EndpointOptions
from ._responses import Answer, EndpointResponse, Refusal
from ._submission import BodyPlan, Submission, body_plan, parse_submission, read_body, url_from_referer

if TYPE_CHECKING:
    from ..asgi import ASGIApplication
    from ..wsgi import StartResponse, WSGIApplication
    from ._asgi import FeedbackAsgiApp

__all__ = ["FeedbackEndpoint"]

logger = logging.getLogger("sentry_feedback")

_ALLOW = (("Allow", "POST, OPTIONS"),)
_STATIC_ALLOW = (("Allow", "GET, HEAD"),)


@dataclass(frozen=True)
class RequestHead:
    """What the endpoint needs of a request before its body: method, path, headers (lower-case names), peer."""

    method: str
    path: str
    headers: Mapping[str, str]
    remote: str | None

    @classmethod
    def of(
        cls,
        method: object,
        path: object,
        headers: dict[str, str],
        remote: object,
        server: tuple[object, object, object] = (None, None, None),
    ) -> RequestHead:
        """A head from what a server gave, whatever its types; ``server`` (name, port, scheme) stands in for ``Host``.

        Without a ``Host`` header (HTTP/1.0, a test client) the host is the server's name and
        port, as PEP 3333 rebuilds a URL.
        """
        name, port, scheme = server
        if "host" not in headers and isinstance(name, str) and name:
            default = "443" if scheme == "https" else "80"
            port_text = str(port) if isinstance(port, (str, int)) else ""
            headers["host"] = name if port_text in ("", default) else f"{name}:{port_text}"
        return cls(
            method=method.upper() if isinstance(method, str) else "GET",
            path=path if isinstance(path, str) else "",
            headers=headers,
            remote=remote if isinstance(remote, str) else None,
        )

    @property
    def wants_html(self) -> bool:
        """A browser's plain form post (it asks for HTML, not JSON): answer with a page."""
        accept = self.headers.get("accept", "").lower()
        return "text/html" in accept and "application/json" not in accept

    @property
    def static_name(self) -> str | None:
        """The static file asked for (``form.js``, ``form.css``), when the path ends with one."""
        name = self.path.rsplit("/", 1)[-1]
        return name if name in STATIC_FILES else None


def head_from_environ(environ: Mapping[str, Any]) -> RequestHead:
    """The head of a request given as a WSGI environ (Flask's ``request.environ``, Django's ``request.META``)."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            headers[key[5:].replace("_", "-").lower()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers[key.replace("_", "-").lower()] = value
    server = (environ.get("SERVER_NAME"), environ.get("SERVER_PORT"), environ.get("wsgi.url_scheme"))
    return RequestHead.of(
        environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), headers, environ.get("REMOTE_ADDR"), server
    )


class FeedbackEndpoint:
    """``POST`` a feedback (a form or JSON), get ``{"id": ...}`` back: a WSGI application, and every adapter's core.

    Takes ``message`` (required), ``email``, ``name``, ``url``, ``associated_event_id`` and
    files (multipart), checks each of them and the request's size, media types, origin and
    rate, and captures the feedback with the SDK in the request's scope. Everything else a
    client posts is ignored: it cannot choose the event id, tags, user or source.
    ``GET .../form.js`` and ``.../form.css`` serve the embeddable form's script and style.

    >>> from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint, RateLimit
    >>> endpoint = FeedbackEndpoint(EndpointOptions(rate_limit=RateLimit(5, 60.0)))
    >>> application = endpoint.mount_wsgi(application, "/feedback")  # doctest: +SKIP

    Mounted on its own (``endpoint(environ, start_response)``) it answers at every path.
    Never raises into the server: an unexpected failure is logged on the ``sentry_feedback``
    logger and answered with 500.
    """

    def __init__(self, options: EndpointOptions | None = None) -> None:
        if options is None:
            options = EndpointOptions()
        elif not isinstance(options, EndpointOptions):
            raise TypeError(f"options must be EndpointOptions, not {type(options).__name__}")
        #: The options, validated.
        self.options = options
        #: The per-address limit (``None`` when ``rate_limit`` is ``None``); ``reset()`` forgets every address.
        self.rate_limiter: AddressRateLimiter | None = (
            AddressRateLimiter(options.rate_limit, max_clients=options.max_tracked_clients)
            if options.rate_limit is not None
            else None
        )
        self._asgi: FeedbackAsgiApp | None = None

    def __repr__(self) -> str:
        return f"FeedbackEndpoint({self.options!r})"

    # -- WSGI ----------------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (a WSGI application)."""
        response = self.respond(environ)
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        start_response(response.status_line, headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    def respond(self, environ: Mapping[str, Any]) -> EndpointResponse:
        """Answer a request given as a WSGI environ (the body is read from ``wsgi.input``)."""
        stream = environ.get("wsgi.input")

        def read(size: int) -> bytes:
            if stream is None:
                return b""
            data: bytes = stream.read(size)
            return data

        with self._request_scope(lambda options: from_wsgi_environ(environ, options=options)):
            return self.handle(head_from_environ(environ), read, terminated=bool(environ.get("wsgi.input_terminated")))

    def mount_wsgi(self, app: WSGIApplication, path: str = "/feedback") -> WSGIApplication:
        """``app`` with the endpoint at ``path`` (and ``path/form.js``, ``path/form.css``) in front of it."""
        prefix = mount_prefix(path)

        def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if is_mounted_path(environ.get("PATH_INFO"), prefix):
                return self(environ, start_response)
            return app(environ, start_response)

        return application

    # -- ASGI ----------------------------------------------------------------------------------------------------

    @property
    def asgi_app(self) -> FeedbackAsgiApp:
        """The same endpoint as an ASGI 3 application (the blocking work runs in a thread)."""
        if self._asgi is None:
            from ._asgi import FeedbackAsgiApp

            self._asgi = FeedbackAsgiApp(self)
        return self._asgi

    def mount_asgi(self, app: ASGIApplication, path: str = "/feedback") -> ASGIApplication:
        """``app`` (ASGI 3) with the endpoint at ``path`` (and ``path/form.js``, ``path/form.css``) in front of it."""
        return self.asgi_app.mount(app, path)

    # -- the embeddable form -------------------------------------------------------------------------------------

    def form_html(
        self,
        action: str = "/feedback",
        *,
        associated_event_id: str | None = None,
        script_src: str | None = None,
        stylesheet_href: str | None = None,
        nonce: str | None = None,
        id_prefix: str = "sentry-feedback",
        include_trace: bool = True,
        heading: str = "Tell us what happened",
    ) -> str:
        """:func:`feedback_form_html` with this endpoint's limits: message length, files, accepted types."""
        return feedback_form_html(
            action,
            associated_event_id=associated_event_id,
            script_src=script_src,
            stylesheet_href=stylesheet_href,
            nonce=nonce,
            id_prefix=id_prefix,
            max_message_length=self.options.max_message_length,
            max_attachments=self.options.max_attachments,
            accept=self.options.allowed_content_types,
            include_trace=include_trace,
            heading=heading,
        )

    # -- the core ------------------------------------------------------------------------------------------------

    @staticmethod
    @contextlib.contextmanager
    def _request_scope(data: Callable[[Options], RequestData]) -> Iterator[None]:
        """Run the block in the request's isolation scope: the middleware's, else one opened here.

        ``data(options)`` gives the request data of a scope opened here. Without the SDK's
        middleware the feedback still gets the request data, and nothing of another request.
        """
        if active_request() is not None:
            yield
            return
        try:
            request = RequestScope(data(get_client().options), mechanism_type="feedback_endpoint")
        except Exception:
            logger.exception("feedback endpoint: could not open the request's scope; the request runs without it")
            yield
            return
        try:
            with request.active():
                yield
        finally:
            request.finish()

    def handle(self, head: RequestHead, read: Callable[[int], bytes], *, terminated: bool) -> EndpointResponse:
        """Answer a request described by ``head``: the core every adapter calls.

        ``read(size)`` returns up to ``size`` bytes of the body (``b""`` at its end);
        ``terminated`` says the server frames the body itself (as for a chunked body), so that
        it may be read to its end without a ``Content-Length``. Call it in the request's
        isolation scope: :meth:`respond` (and every adapter) opens one when no middleware did.
        """
        answer = Answer(html=head.wants_html)
        try:
            step = self._preflight(head, terminated=terminated)
            if isinstance(step, EndpointResponse):
                return step
            answer, plan = step
            body = read_body(read, plan, terminated=terminated)
        except Refusal as refusal:
            return self._refused(head, answer, refusal)
        except Exception:
            logger.exception("feedback endpoint: unexpected error")
            return _internal_error(answer)
        return self._submit(head, answer, plan, body)

    def _preflight(self, head: RequestHead, *, terminated: bool) -> EndpointResponse | tuple[Answer, BodyPlan]:
        """Everything decided before the body is read: a complete answer, or how to read the body."""
        answer = Answer(html=head.wants_html)
        try:
            static = head.static_name
            if static is not None:
                if head.method not in ("GET", "HEAD"):
                    raise Refusal(405, "method_not_allowed", "use GET", headers=_STATIC_ALLOW)
                return static_file(static)
            cors = self._cors_headers(head)
            answer = Answer(html=head.wants_html, headers=cors)
            if head.method == "OPTIONS":
                return EndpointResponse(204, _ALLOW + cors + _preflight_headers(cors))
            if head.method != "POST":
                raise Refusal(405, "method_not_allowed", "feedback is sent with POST", headers=_ALLOW)
            self._check_rate(head)
            plan = body_plan(head.headers.get("content-type"), head.headers.get("content-length"), self.options)
            if plan.length is None and not terminated:
                raise Refusal(411, "length_required", "the request has no Content-Length")
            return answer, plan
        except Refusal as refusal:
            return self._refused(head, answer, refusal)
        except Exception:
            logger.exception("feedback endpoint: unexpected error")
            return _internal_error(answer)

    def _submit(self, head: RequestHead, answer: Answer, plan: BodyPlan, body: bytes) -> EndpointResponse:
        """Parse and check ``body``, capture the feedback and answer; runs in the request's scope."""
        try:
            submission = parse_submission(body, plan, self.options, self._max_file_size())
            return self._deliver(head, answer, submission)
        except Refusal as refusal:
            return self._refused(head, answer, refusal)
        except Exception:
            logger.exception("feedback endpoint: unexpected error")
            return _internal_error(answer)

    # -- steps -------------------------------------------------------------------------------------------------

    def _cors_headers(self, head: RequestHead) -> tuple[tuple[str, str], ...]:
        """``()`` for a same-origin (or non-browser) request, CORS headers for an allowed origin; else 403."""
        origin = head.headers.get("origin")
        if origin is None:
            return ()
        normalized = origin.strip().rstrip("/").lower()
        allowed = self.options.allowed_origins
        if normalized in allowed or "*" in allowed:
            return (("Access-Control-Allow-Origin", origin.strip()), ("Vary", "Origin"))
        host = head.headers.get("host", "").strip().lower()
        forwarded_host = head.headers.get("x-forwarded-host", "") if self.options.use_x_forwarded_for else ""
        hosts = {host, forwarded_host.split(",")[0].strip().lower()} - {""}
        try:
            origin_host = urllib.parse.urlsplit(normalized).netloc
        except ValueError:
            origin_host = ""
        if origin_host and (origin_host in hosts or _without_default_port(origin_host, normalized) in hosts):
            return ()
        raise Refusal(403, "forbidden_origin", "feedback from this origin is not accepted")

    def _check_rate(self, head: RequestHead) -> None:
        if self.rate_limiter is None:
            return
        trusted = self.options.trusted_proxies if self.options.use_x_forwarded_for else None
        key = client_key(head.remote, head.headers.get("x-forwarded-for"), trusted_proxies=trusted)
        wait = self.rate_limiter.acquire(key)
        if wait > 0:
            seconds = retry_after(wait)
            raise Refusal(
                429,
                "rate_limited",
                f"too many feedback posts; try again in {seconds} s",
                headers=(("Retry-After", str(seconds)),),
                extra={"retry_after": seconds},
            )

    def _max_file_size(self) -> int:
        limit = min(get_client().options.max_attachment_size, self.options.max_body_size)
        if self.options.max_attachment_size is not None:
            limit = min(limit, self.options.max_attachment_size)
        return limit

    def _deliver(self, head: RequestHead, answer: Answer, submission: Submission) -> EndpointResponse:
        associated = submission.associated_event_id
        if associated is None and self.options.link_last_error and active_request() is not None:
            associated = last_event_id()
        if submission.sentry_trace is not None:
            trace = {"sentry-trace": submission.sentry_trace}
            if submission.baggage is not None:
                trace["baggage"] = submission.baggage
            get_isolation_scope().set_propagation_context(propagation_context_from_headers(trace))
        fields: FeedbackFields = {
            "email": submission.email,
            "name": submission.name,
            "url": submission.url or url_from_referer(head.headers.get("referer")),
            "associated_event_id": associated,
            "source": self.options.source,
            "attachments": [
                Attachment(upload.data, filename=upload.filename, content_type=upload.content_type)
                for upload in submission.attachments
            ],
        }
        if not self.options.wait_for_delivery:
            event_id = capture_feedback(submission.message, **fields)
            if event_id is None:
                raise Refusal(503, "not_accepted", "the feedback could not be taken right now; please try later")
            logger.debug("feedback endpoint: feedback %s queued", event_id)
            return answer.json(202, {"id": event_id})
        try:
            event_id = send_feedback(submission.message, timeout=self.options.delivery_timeout, **fields)
        except FeedbackTimeoutError as exc:  # still queued, and it may arrive yet
            return answer.json(202, {"id": exc.event_id or ""})
        except RateLimitedError as exc:
            seconds = retry_after(exc.retry_after)
            raise Refusal(
                503,
                "not_delivered",
                "feedback cannot be delivered right now; please try later",
                headers=(("Retry-After", str(seconds)),),
                extra={"retry_after": seconds},
            ) from None
        except InvalidFeedbackError as exc:
            raise Refusal(400, "invalid_feedback", str(exc)) from None
        except FeedbackError as exc:
            logger.warning("feedback endpoint: feedback not delivered: %s", exc)
            raise Refusal(503, "not_delivered", "the feedback could not be delivered; please try later") from None
        return answer.json(201, {"id": event_id})

    def _refused(self, head: RequestHead, answer: Answer, refusal: Refusal) -> EndpointResponse:
        logger.debug("feedback endpoint: %s %s refused: %s", head.method, head.path, refusal)
        return answer.refusal(refusal)


def _internal_error(answer: Answer) -> EndpointResponse:
    return answer.json(500, {"error": "internal_error", "detail": "the feedback could not be handled"})


def _preflight_headers(cors: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    if not cors:
        return ()
    return (
        ("Access-Control-Allow-Methods", "POST"),
        ("Access-Control-Allow-Headers", "Content-Type, Accept"),
        ("Access-Control-Max-Age", "600"),
    )


def _without_default_port(netloc: str, origin: str) -> str:
    """``netloc`` with the scheme's default port added, so ``http://shop`` matches ``Host: shop:80``."""
    if ":" in netloc.rsplit("]", 1)[-1]:
        return netloc
    return f"{netloc}:{443 if origin.startswith('https:') else 80}"


def mount_prefix(path: str) -> str:
    """``path`` as a mount prefix (``"/feedback/"`` is ``"/feedback"``); ``ValueError`` unless it starts with ``/``."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    return path.rstrip("/")


def is_mounted_path(path: object, prefix: str) -> bool:
    """Whether a request for ``path`` goes to an endpoint mounted at ``prefix``."""
    if not isinstance(path, str):
        return False
    if path in (prefix, prefix + "/"):
        return True
    return path.startswith(prefix + "/") and path[len(prefix) + 1 :] in STATIC_FILES
