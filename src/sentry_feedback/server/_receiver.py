"""A local HTTP server that speaks Sentry's envelope endpoint, for tests and development.

:class:`LocalReceiver` accepts ``POST /api/<project_id>/envelope/`` like Sentry (auth,
gzip/deflate bodies, envelope validation), stores what it accepts in a
:class:`~sentry_feedback.server.FeedbackStore` and records every envelope request so a
test can look at exactly what an SDK sent, wait for it without sleeping, and script
the answers (rate limits, server errors) with :meth:`LocalReceiver.respond_with`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable

from ._app import Arrival, FeedbackApp
from ._config import ApiToken, Project, ServerConfig
from ._http import MAX_CONNECTIONS, Answer, AppHandler, MemoryBudget, Server, Server6
from ._ingest import ReceivedRequest
from ._store import FeedbackStore

__all__ = ["DEFAULT_MAX_BODY_SIZE", "LocalReceiver", "ReceivedRequest", "serve"]

logger = logging.getLogger("sentry_feedback.server")

#: Bodies larger than this (compressed or not) are answered with 413: 200 MiB, like Relay.
DEFAULT_MAX_BODY_SIZE = 200 * 1024 * 1024
#: Bytes that request bodies (as read, and decoded) may hold at once over all requests of a
#: receiver. A request that would go past it is answered 503 with ``Retry-After``, so a flood
#: of large or compressed bodies cannot exhaust memory. Never less than three times
#: ``max_body_size`` (the raw body, the decoded one and its copy), so that one request of the
#: largest size always fits.
DEFAULT_MEMORY_BUDGET = 3 * DEFAULT_MAX_BODY_SIZE
#: How many handled requests a LocalReceiver keeps for :attr:`LocalReceiver.received` by default.
DEFAULT_RECORDED_REQUESTS = 100
#: The most body bytes the kept requests may hold together; the oldest go first past it.
RECORDED_BODY_BUDGET = 64 * 1024 * 1024


class _Canned:
    """A queued test answer, used ``remaining`` more times (None: until reset)."""

    __slots__ = ("answer", "remaining")

    def __init__(self, answer: Answer, remaining: int | None) -> None:
        self.answer = answer
        self.remaining = remaining


class LocalReceiver:
    """A Sentry envelope endpoint on a local port, backed by a :class:`FeedbackStore`.

    ``port=0`` picks a free port at :meth:`start`. ``database`` is a SQLite path or
    ``":memory:"``; the store is opened by :meth:`start` and closed by :meth:`stop`.
    With ``ssl_context`` (a server-side context with the certificate loaded, say
    ``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)``) it serves HTTPS, and
    :attr:`url` and :attr:`dsn` start with ``https://``; set the context's
    ``verify_mode`` to ``CERT_REQUIRED`` to require client certificates.

    >>> with LocalReceiver() as receiver:  # doctest: +SKIP
    ...     sentry_feedback.init(dsn=receiver.dsn)
    ...     sentry_feedback.capture_feedback("It works")
    ...     assert receiver.wait_for_envelopes(1)
    ...     print(receiver.store.list_feedback()[0].message)
    It works

    Requests to ``/api/<project_id>/envelope/`` are checked in this order: body size
    (413), auth (401), project id (404), canned answer (see :meth:`respond_with`),
    content encoding (400/413), envelope syntax and item rules (400). Every one of
    them, whatever the answer, is counted by :meth:`wait_for_envelopes`, and the last
    ``record_requests`` of them (100 by default, 0 for none) are kept in :attr:`received`,
    their bodies holding at most 64 MiB together.

    The same server answers the User Feedback REST API under :attr:`api_url` (``/api/0/``),
    with Bearer tokens: ``api_token`` (read and write) and ``read_token`` (read only), or
    the tokens of ``config``; without any, one is made at the first start and kept in the
    database (:attr:`api_token`). ``org`` and ``project_slug`` name the organization and
    the project of the URLs; ``config`` (a :class:`ServerConfig`) can name several projects.
    ``on_arrival`` is called with an :class:`Arrival` for each feedback, event, transaction, session
    update and session aggregate stored.
    At most ``max_connections`` connections are served at once (a thread each); more wait
    to be accepted.

    The bodies of the requests in progress hold at most ``memory_budget`` bytes together
    (600 MiB by default, at least three times ``max_body_size``), as read and as decoded: a
    request that would need more is answered 503 with ``Retry-After: 1``. Envelopes hold at most
    1000 items; every malformed input is a 400 with a ``detail`` saying why.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        database: str = ":memory:",
        public_key: str = "public",
        project_id: str = "1",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        record_requests: int = DEFAULT_RECORDED_REQUESTS,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        org: str = "local",
        project_slug: str = "default",
        api_token: str | None = None,
        read_token: str | None = None,
        config: ServerConfig | None = None,
        on_arrival: Callable[[Arrival], object] | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._max_connections = max_connections
        if config is None:
            tokens = [ApiToken(api_token)] if api_token is not None else []
            if read_token is not None:
                tokens.append(ApiToken(read_token, frozenset({"read"})))
            config = ServerConfig(org, (Project(project_slug, str(project_id), public_key),), tuple(tokens))
        elif api_token is not None or read_token is not None:
            raise ValueError("give tokens in config or as api_token/read_token, not both")
        self._config = config
        self._on_arrival = on_arrival
        self._app: FeedbackApp | None = None
        public_key, project_id = config.projects[0].public_key, config.projects[0].id
        if max_body_size < 0:
            raise ValueError("max_body_size must be >= 0")
        if record_requests < 0:
            raise ValueError("record_requests must be >= 0")
        self._host = host
        self._port = port
        self._database = database
        self._public_key = public_key
        self._project_id = str(project_id)
        self._max_body_size = max_body_size
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._handled = threading.Condition(self._lock)
        self._received: collections.deque[ReceivedRequest] = collections.deque(maxlen=record_requests or None)
        self._record_requests = record_requests
        self._memory = MemoryBudget(max(memory_budget, 3 * max_body_size))
        self._recorded_bytes = 0
        self._handled_count = 0
        self._canned: list[_Canned] = []
        self._connections_opened = 0
        self._open_sockets: set[socket.socket] = set()
        self._store: FeedbackStore | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalReceiver:
        """Open the store, bind the port and serve on a daemon thread; return ``self``."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("a stopped LocalReceiver cannot be started again")
            if self._server is not None:
                raise RuntimeError("LocalReceiver is already started")
        store = FeedbackStore(self._database)
        try:
            app = FeedbackApp(
                store,
                self._config,
                max_body_size=self._max_body_size,
                memory=self._memory,
                hooks=self,
                on_arrival=self._on_arrival,
            )
            server_class = Server6 if ":" in self._host else Server
            server = server_class((self._host, self._port), AppHandler, bind_and_activate=False)
            server.max_connections = self._max_connections
            server.receiver = self
            server.app = app
            server.memory = self._memory
            server.max_body_size = self._max_body_size
            try:
                server.server_bind()
                server.server_activate()
                if self._ssl_context is not None:
                    server.serve_tls(self._ssl_context)
            except BaseException:
                server.server_close()
                raise
        except BaseException:
            store.close()
            raise
        self._store = store
        self._app = app
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sentry-feedback-receiver:{self._port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("receiver listening on %s (DSN %s)", self.url, self.dsn)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the store. Calling it again does nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server, thread = self._server, self._thread
        if server is not None:
            server.shutdown()
            server.server_close()
            with self._lock:
                sockets = list(self._open_sockets)
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join()
        if self._store is not None:
            # Handlers still finishing see a closed store and answer 500.
            self._store.close()

    def __enter__(self) -> LocalReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The host the server binds to."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (chosen by :meth:`start` when created with ``port=0``)."""
        if self._port == 0:
            raise RuntimeError("the port is chosen by start(); start the LocalReceiver first")
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (``https://`` with an ``ssl_context``).

        A wildcard host (``0.0.0.0``, ``::``) shows as the loopback address.
        """
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def dsn(self) -> str:
        """The DSN an SDK should use: ``http(s)://{public_key}@HOST:PORT/{project_id}``."""
        scheme, _, netloc = self.url.partition("://")
        return f"{scheme}://{self._public_key}@{netloc}/{self._project_id}"

    @property
    def envelope_url(self) -> str:
        """``{url}/api/{project_id}/envelope/``."""
        return f"{self.url}/api/{self._project_id}/envelope/"

    @property
    def public_key(self) -> str:
        """The accepted ``sentry_key``."""
        return self._public_key

    @property
    def project_id(self) -> str:
        """The accepted project id."""
        return self._project_id

    @property
    def inbox_url(self) -> str:
        """The inbox page, with the API token handed over so that opening the link signs the browser in."""
        return f"{self.url}/?token={urllib.parse.quote(self.api_token, safe='')}"

    @property
    def api_url(self) -> str:
        """The REST API's base URL: ``{url}/api/0``."""
        return f"{self.url}/api/0"

    @property
    def api_token(self) -> str:
        """A REST API token that may read and write: the one given, or the one made at the first start.

        One is made (and kept in the database) whenever no configured token may write.

        A token made by the server is kept in its database, so a restart on the same file keeps it.
        """
        if self._app is None:
            raise RuntimeError("the token is known once started; start the LocalReceiver first")
        return self._app.api_token

    @property
    def org(self) -> str:
        """The organization slug of the REST API's URLs."""
        return self._config.org

    @property
    def project_slug(self) -> str:
        """The slug of the (first) project."""
        return self._config.projects[0].slug

    @property
    def config(self) -> ServerConfig:
        """The organization, projects and configured tokens served."""
        return self._config

    @property
    def app(self) -> FeedbackApp:
        """The WSGI application the server runs (available once started)."""
        if self._app is None:
            raise RuntimeError("the application is made by start(); start the LocalReceiver first")
        return self._app

    @property
    def max_body_size(self) -> int:
        """The largest accepted body, compressed or decoded, in bytes."""
        return self._max_body_size

    @property
    def store(self) -> FeedbackStore:
        """The :class:`FeedbackStore` accepted envelopes go to (open between start and stop)."""
        if self._store is None:
            raise RuntimeError("the store is opened by start(); start the LocalReceiver first")
        return self._store

    # -- test controls -----------------------------------------------------------------

    def respond_with(
        self,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        times: int | None = 1,
    ) -> None:
        """Answer the next ``times`` envelope requests with ``status`` (None: until :meth:`reset_responses`).

        Calls queue up: ``respond_with(429); respond_with(500)`` answers 429, then 500,
        then normally again. A canned answer is used (and counted) by each envelope request
        that passes the auth and project checks. ``status`` must be 200-599. A non-2xx
        answer does not store the envelope (it is still parsed for :attr:`received`). A
        2xx answer stores it as usual (an invalid envelope still gets 400) and sends
        ``headers`` (``X-Sentry-Rate-Limits``, ...) with ``body``, or with the usual
        ``{"id": ...}`` JSON when ``body`` is empty.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"invalid HTTP status {status}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        answer = Answer(status, bytes(body), dict(headers or {}))
        with self._lock:
            self._canned.append(_Canned(answer, times))

    def reset_responses(self) -> None:
        """Forget all canned answers: answer normally from now on."""
        with self._lock:
            self._canned.clear()

    def wait_for_envelopes(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` envelope requests were handled (any answer); False on timeout."""
        with self._handled:
            return self._handled.wait_for(lambda: self._handled_count >= count, timeout)

    @property
    def received(self) -> list[ReceivedRequest]:
        """A copy of the envelope requests kept so far (the last ``record_requests``), in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections the server has accepted."""
        with self._lock:
            return self._connections_opened

    # -- called by the server threads --------------------------------------------------

    def _take_canned(self) -> Answer | None:
        with self._lock:
            if not self._canned:
                return None
            canned = self._canned[0]
            if canned.remaining is not None:
                canned.remaining -= 1
                if canned.remaining <= 0:
                    self._canned.pop(0)
            return canned.answer

    def _record(self, request: ReceivedRequest) -> None:
        with self._handled:
            self._handled_count += 1
            if self._record_requests:
                received = self._received
                if len(received) == received.maxlen:
                    self._recorded_bytes -= len(received[0].body)
                received.append(request)
                self._recorded_bytes += len(request.body)
                while self._recorded_bytes > RECORDED_BODY_BUDGET and len(received) > 1:
                    self._recorded_bytes -= len(received.popleft().body)
            self._handled.notify_all()

    def _connection_opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections_opened += 1
            self._open_sockets.add(sock)

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open_sockets.discard(sock)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._server is not None else "not started"
        where = self.url if self._port else f"{self._host}:0"
        return f"LocalReceiver({where}, project_id={self._project_id!r}, {state})"


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    database: str = ":memory:",
    public_key: str = "public",
    project_id: str = "1",
    *,
    on_start: Callable[[LocalReceiver], object] | None = None,
) -> None:
    """Run a :class:`LocalReceiver` until KeyboardInterrupt (Ctrl-C), then stop it cleanly.

    ``on_start`` is called with the running receiver (to print its DSN, say); without
    it the URL and DSN are printed to stdout.
    """
    receiver = LocalReceiver(
        host=host, port=port, database=database, public_key=public_key, project_id=project_id, record_requests=0
    )
    receiver.start()
    try:
        if on_start is not None:
            on_start(receiver)
        else:
            print(f"sentry-feedback receiver listening on {receiver.url}", flush=True)
            print(f"DSN: {receiver.dsn}", flush=True)
        thread = receiver._thread
        while thread is not None and thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
