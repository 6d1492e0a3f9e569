"""WSGI middleware: one isolation scope per request, with its request data, trace and unhandled errors.

>>> from sentry_feedback.wsgi import SentryWsgiMiddleware
>>> app = SentryWsgiMiddleware(app)  # or, with Flask: app.wsgi_app = SentryWsgiMiddleware(app.wsgi_app)

See the "WSGI and ASGI middleware" page of the documentation.
"""

from __future__ import annotations

# ``typing`` for ``StartResponse``: this module is imported by an application that uses the
# middleware (or at Flask's or Django's first request), never by ``import sentry_feedback`` or ``init``.
from typing import Protocol

from ._context import get_client
from ._log import logger
from ._request_data import BodyRecorder, from_wsgi_environ
from ._web import RequestScope, WebMiddleware, active_request, set_transaction_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType
    from typing import Any, TypeAlias

__all__ = ["SentryWsgiMiddleware", "set_transaction_name"]

ExcInfo: TypeAlias = "tuple[type[BaseException], BaseException, TracebackType | None]"


class StartResponse(Protocol):
    """The ``start_response`` callable of PEP 3333."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = ..., /
    ) -> Callable[[bytes], object]: ...


WSGIApplication: TypeAlias = "Callable[[dict[str, Any], StartResponse], Iterable[bytes]]"


class SentryWsgiMiddleware(WebMiddleware[WSGIApplication]):
    """Wraps a WSGI application: each request runs in its own isolation scope.

    For every request the middleware:

    * forks the isolation scope, so ``set_user``, ``set_tag``... stay in that request;
    * continues the caller's trace from ``sentry-trace`` (or ``traceparent``) and ``baggage``;
    * puts the request data (method, URL, query string, filtered headers; with
      ``send_default_pii`` also cookies, the body and the client's IP) and a transaction
      name (Flask's route, else the path) on every error and feedback captured in it;
    * captures an exception raised by the application, or while its response is iterated
      or closed, once (mechanism ``{"type": "wsgi", "handled": false}``) and raises it
      again unchanged; afterwards ``last_event_id()`` gives its id to an error handler
      around the middleware;
    * keeps the request's scope while a streamed response is iterated and closed.

    ``use_x_forwarded_for=True`` takes the client's IP from the first ``X-Forwarded-For``
    entry (only behind a proxy that sets it: clients can send anything).
    ``max_request_body_size`` bounds the body kept (bytes; ``0``: never). A failure in the
    middleware's own code is logged on the ``sentry_feedback`` logger, never raised.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Run the application for one request in the request's scope."""
        if active_request() is not None:  # wrapped twice: the outer middleware does the work
            return self.app(environ, start_response)
        request = self._open(environ)
        if request is None:
            return self.app(environ, start_response)

        def start_and_note_status(status: str, headers: Any, exc_info: Any = None) -> Any:
            request.set_response_status(status)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        with request.handling():
            response = self.app(environ, start_and_note_status)
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(response, (list, tuple)) or (
            isinstance(file_wrapper, type) and isinstance(response, file_wrapper)
        ):
            # Nothing runs while these are sent; the server keeps its shortcuts for them
            # (Content-Length from a one-item list, sendfile for a file wrapper).
            request.finish()
            return response
        return _ScopedResponse(response, request)

    def _open(self, environ: dict[str, Any]) -> RequestScope | None:
        try:
            options = get_client().options
            data = from_wsgi_environ(environ, options=options, use_x_forwarded_for=self.use_x_forwarded_for)
            body = None
            if options.send_default_pii and data.wants_body(self.max_request_body_size):
                stream = environ.get("wsgi.input")
                if stream is not None:
                    body = BodyRecorder(self.max_request_body_size, data.content_type, data.content_length)
                    environ["wsgi.input"] = _RecordingInput(stream, body)
            return RequestScope(data, mechanism_type="wsgi", body=body, route=lambda: _werkzeug_route(environ))
        except Exception:
            logger.exception("could not set up the scope of a WSGI request; the request runs without it")
            return None


def _werkzeug_route(environ: dict[str, Any]) -> str | None:
    """The rule of the URL that Flask (Werkzeug) matched, while the request is being handled."""
    rule = getattr(getattr(environ.get("werkzeug.request"), "url_rule", None), "rule", None)
    return rule if isinstance(rule, str) else None


class _ScopedResponse:
    """The application's response, iterated and closed in the request's scope."""

    __slots__ = ("_request", "_response")

    def __init__(self, response: Iterable[bytes], request: RequestScope) -> None:
        self._response = response
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        request = self._request
        with request.handling():
            iterator = iter(self._response)
        while True:
            # The scope is entered around each step only: between steps the server runs its own code.
            with request.handling():
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
            yield chunk

    def close(self) -> None:
        """Close the application's response (PEP 3333) in the request's scope."""
        close = getattr(self._response, "close", None)
        try:
            if close is not None:
                with self._request.handling():
                    close()
        finally:
            self._request.finish()


class _RecordingInput:
    """``wsgi.input`` that keeps a copy of what the application reads (see :class:`BodyRecorder`)."""

    def __init__(self, stream: Any, recorder: BodyRecorder) -> None:
        self._stream = stream
        self._recorder = recorder

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        size = args[0] if args else None
        self._record(data, end=size is None or size < 0 or (size > 0 and not data))
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._record(data, end=not data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        for line in lines:
            self._record(line)
        if not args or args[0] is None or args[0] <= 0:
            self._record(b"", end=True)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _record(self, data: object, *, end: bool = False) -> None:
        try:
            if isinstance(data, (bytes, bytearray)):
                self._recorder.add(bytes(data), end=end)
        except Exception:
            logger.exception("could not record the request body")
