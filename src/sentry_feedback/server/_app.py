"""The feedback server as one WSGI application (stdlib only): envelope ingest and the REST API.

:class:`FeedbackApp` routes ``/api/<project_id>/envelope/`` to the ingest endpoint and
``/api/0/...`` to the User Feedback REST API. The built-in threaded server
(:class:`~sentry_feedback.server.LocalReceiver`) runs it, and so does any WSGI server::

    gunicorn --workers 4 --threads 8 'sentry_feedback.server:create_app()'

Request bodies hold at most ``max_body_size`` bytes each and ``memory`` bytes together (as read
and as decoded); past that the answer is 413 or 503 with ``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .._web import status_line
from ._config import ServerConfig, new_token
from ._http import Answer, Headers, MemoryBudget, Reject

if TYPE_CHECKING:
    from ._ingest import ReceivedRequest
    from ._store import FeedbackStore

__all__ = ["Arrival", "FeedbackApp", "Request"]

logger = logging.getLogger("sentry_feedback.server")

_READ_BLOCK = 64 * 1024
_DIGITS = re.compile(r"[0-9]{1,18}")
_HOST = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
#: The key the server's generated API token is kept under in the store's settings.
TOKEN_SETTING = "api_token"
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Arrival:
    """Something the server stored, for a one-line log (``serve`` prints these).

    ``kind`` is ``feedback``, ``user_report`` or the event's type (``error``, ``default``, ...) with the
    feedback's or the event's ``message``; or ``transaction``, ``session`` (an update of one session) or
    ``sessions`` (session aggregates), whose ``message`` is a summary: a transaction's name, op, duration,
    span count and trace id (the first 8 digits); a session's status, errors, release and sid; an
    aggregate's release and counts. Session updates and aggregates have no ``event_id``.
    """

    received_at: float
    project: str
    kind: str
    event_id: str | None
    message: str | None


class IngestHooks(Protocol):
    """What a test receiver adds to the ingest endpoint: canned answers and recorded requests."""

    def _take_canned(self) -> Answer | None: ...

    def _record(self, request: ReceivedRequest) -> None: ...


class Request:
    """One request as the application sees it: method, path, query, headers and a bounded body."""

    def __init__(self, app: FeedbackApp, environ: dict[str, Any]) -> None:
        self.app = app
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.path = str(environ.get("PATH_INFO", "") or "/")
        self.query_string = str(environ.get("QUERY_STRING", ""))
        headers = environ.get("sentry_feedback.headers")
        self.headers: Mapping[str, str] = headers if isinstance(headers, Headers) else _environ_headers(environ)
        self._held = 0
        self._body: bytes | None = environ.get("sentry_feedback.body")

    @property
    def target(self) -> str:
        """The path with its query string, as the client sent it (more or less: the path is decoded)."""
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    @property
    def scheme(self) -> str:
        """``http`` or ``https``, as the client sees it.

        A reverse proxy on the same host (a loopback peer) may say so in ``X-Forwarded-Proto``.
        """
        scheme = str(self.environ.get("wsgi.url_scheme", "http"))
        forwarded = self.headers.get("X-Forwarded-Proto", "").strip().lower()
        if forwarded in ("http", "https") and self._from_local_proxy():
            return forwarded
        return scheme

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` the client used, from ``Host`` (checked) or the server's address.

        A reverse proxy on the same host may give the client's host in ``X-Forwarded-Host``.
        """
        scheme = self.scheme
        host = self.headers.get("Host", "")
        forwarded = self.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if forwarded and _HOST.fullmatch(forwarded) and self._from_local_proxy():
            host = forwarded
        if not _HOST.fullmatch(host):
            name, port = str(self.environ.get("SERVER_NAME", "localhost")), str(self.environ.get("SERVER_PORT", ""))
            if ":" in name:
                name = f"[{name}]"
            default = {"http": "80", "https": "443"}.get(scheme)
            host = name if port in ("", default) else f"{name}:{port}"
        return f"{scheme}://{host}"

    def _from_local_proxy(self) -> bool:
        try:
            return ipaddress.ip_address(str(self.environ.get("REMOTE_ADDR", ""))).is_loopback
        except ValueError:
            return False

    def reserve(self, amount: int) -> None:
        """Take ``amount`` body bytes from the server's budget; a 503 when it holds too much already."""
        self.app.memory.reserve(amount, held=self._held)
        self._held += amount

    def release(self) -> None:
        """Give back the bytes this request took."""
        if self._held:
            self.app.memory.give(self._held)
            self._held = 0

    def body(self) -> bytes:
        """The request body (read once), at most ``max_body_size`` bytes: else a 413."""
        if self._body is None:
            self._body = self._read_body()
        return self._body

    def _read_body(self) -> bytes:
        limit = self.app.max_body_size
        stream = self.environ.get("wsgi.input")
        length_text = str(self.environ.get("CONTENT_LENGTH") or "").strip()
        if stream is None:
            return b""
        if length_text:
            if not _DIGITS.fullmatch(length_text):
                raise Reject(Answer.error(400, f"invalid Content-Length {length_text!r}"), close=True)
            length = int(length_text)
            if length > limit:
                raise Reject(Answer.error(413, f"body is larger than {limit} bytes"), close=True)
            self.reserve(length)
            data = stream.read(length)
            if len(data) < length:
                raise Reject(Answer.error(400, "body is shorter than its Content-Length"), close=True)
            return bytes(data)
        if not self.environ.get("wsgi.input_terminated"):
            return b""  # no length and a server that does not end the stream: no body (PEP 3333)
        chunks: list[bytes] = []
        total = 0
        while True:
            block = stream.read(_READ_BLOCK)
            if not block:
                break
            total += len(block)
            if total > limit:
                raise Reject(Answer.error(413, f"body is larger than {limit} bytes"), close=True)
            self.reserve(len(block))
            chunks.append(block)
        self.reserve(total)
        return b"".join(chunks)

    def query(self) -> dict[str, list[str]]:
        """The query string's parameters, each with all its values (blank values kept)."""
        try:
            return urllib.parse.parse_qs(
                self.query_string, keep_blank_values=True, strict_parsing=False, max_num_fields=1000
            )
        except ValueError as exc:  # more than max_num_fields
            raise Reject(Answer.error(400, f"invalid query string: {exc}")) from None


class FeedbackApp:
    """The feedback server's WSGI application: envelope ingest and the User Feedback REST API.

    ``store`` is where feedback is kept; ``config`` names the organization, projects and API
    tokens. When no token of ``config`` may write, one is generated at the first start and kept in
    the store (:attr:`api_token` returns it), so every worker and every restart use the same one.
    """

    def __init__(
        self,
        store: FeedbackStore,
        config: ServerConfig | None = None,
        *,
        max_body_size: int = 200 * 1024 * 1024,
        memory: MemoryBudget | None = None,
        hooks: IngestHooks | None = None,
        on_arrival: Callable[[Arrival], object] | None = None,
    ) -> None:
        from ._config import ApiToken

        self.store = store
        config = config or ServerConfig()
        if not any("write" in token.scopes for token in config.tokens):
            # No token may write (say, only a read token was given): make one, kept in the store.
            generated = store.setting(TOKEN_SETTING, new_token())
            config = ServerConfig(config.org, config.projects, (ApiToken(generated), *config.tokens))
        self.config = config
        self.max_body_size = max_body_size
        self.memory = memory or MemoryBudget(3 * max_body_size)
        self.hooks = hooks
        self.on_arrival = on_arrival

    @property
    def api_token(self) -> str:
        """The first token of the configuration that may read and write."""
        return next(token.value for token in self.config.tokens if "write" in token.scopes)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (PEP 3333)."""
        request = Request(self, environ)
        try:
            answer = self.handle(request)
        finally:
            request.release()
        body = b"" if answer.status in (204, 304) or request.method == "HEAD" else answer.body
        headers = [(name, value) for name, value in answer.headers.items() if name.lower() != "content-length"]
        headers.append(("Content-Length", str(len(answer.body) if request.method == "HEAD" else len(body))))
        headers += [("Set-Cookie", cookie) for cookie in answer.cookies]
        start_response(status_line(answer.status), headers)
        return [body]

    def handle(self, request: Request) -> Answer:
        """The answer to ``request``; never raises."""
        from . import _inbox, _ingest, _rest

        try:
            if request.path.startswith("/api/0/"):
                return _rest.handle(self, request)
            if request.path == "/" or request.path.startswith("/inbox/"):
                return _inbox.handle(self, request)
            project_id = _ingest.envelope_project(request.path)
            if project_id is not None:
                return _ingest.handle(self, request, project_id)
            if request.method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                return Answer.error(405, f"method {request.method} not allowed")
            request.body()  # a body must be read (and bounded) even when the path is wrong
            return Answer.error(404, f"no such endpoint: {request.method} {request.path}")
        except Reject as reject:
            return reject.answer
        except Exception:
            logger.exception("the feedback server failed to answer %s %s", request.method, request.path)
            return Answer.error(500, "internal server error")

    def rejected(self, method: str, target: str, headers: Headers, answer: Answer) -> Answer:
        """The answer to a request whose body the HTTP server refused (bad framing, too large, no memory)."""
        from . import _ingest

        return _ingest.rejected(self, method, target, headers, answer)

    def arrived(self, arrivals: Iterable[Arrival]) -> None:
        """Tell ``on_arrival`` what was stored; its failures are logged, never answered."""
        if self.on_arrival is None:
            return
        for arrival in arrivals:
            try:
                self.on_arrival(arrival)
            except Exception:
                logger.exception("on_arrival failed")

    def project_slug(self, project_id: str) -> str:
        """The slug of the project with this id (the id itself for an unknown one)."""
        project = self.config.project(project_id)
        return project.slug if project is not None else project_id

    @staticmethod
    def now() -> float:
        """The current time (Unix seconds)."""
        return time.time()


def _environ_headers(environ: Mapping[str, Any]) -> Headers:
    items: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            items.append((key[5:].replace("_", "-").title(), str(value)))
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            items.append((name, str(environ[key])))
    return Headers(items)


def create_app(
    database: str | None = None,
    config: ServerConfig | str | None = None,
    *,
    max_body_size: int = 200 * 1024 * 1024,
) -> FeedbackApp:
    """A :class:`FeedbackApp` for a WSGI server (gunicorn, uWSGI): ``gunicorn 'sentry_feedback.server:create_app()'``.

    Without arguments it reads the environment: ``SENTRY_FEEDBACK_DATABASE`` (the SQLite file,
    ``sentry-feedback.sqlite3`` by default), ``SENTRY_FEEDBACK_CONFIG`` (a JSON configuration
    file, see :class:`ServerConfig`) and ``SENTRY_FEEDBACK_TOKEN`` (the API token, when the
    configuration has none). Each worker process opens the database on its own (WAL mode:
    they read concurrently and take turns to write) and all agree on a generated token.
    """
    import os

    from ._config import ApiToken
    from ._store import FeedbackStore

    database = database or os.environ.get("SENTRY_FEEDBACK_DATABASE") or "sentry-feedback.sqlite3"
    config = config if config is not None else os.environ.get("SENTRY_FEEDBACK_CONFIG") or None
    loaded = ServerConfig.load(config) if isinstance(config, str) else config or ServerConfig()
    token = os.environ.get("SENTRY_FEEDBACK_TOKEN")
    if token and not loaded.tokens:
        loaded = ServerConfig(loaded.org, loaded.projects, (ApiToken(token),))
    return FeedbackApp(FeedbackStore(database), loaded, max_body_size=max_body_size)
