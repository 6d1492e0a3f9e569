"""Transports: how one envelope reaches the server.

A transport does I/O only: it sends one envelope and reports the server's answer.
Queueing, rate limits and client reports are the same for every transport and live in
:mod:`sentry_feedback._dispatch`, so a custom transport never has to re-implement them.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
import zlib
from abc import ABC, abstractmethod

from . import _http1
from ._dsn import USER_AGENT, Dsn
from ._log import logger
from ._ratelimit import RateLimiter
from ._record import FACTORY, Frozen
from ._watchdog import (
    Exchange,
    ExchangeWatchdog,
    attach_connection,
    watched_pool_classes,
)
from .exceptions import TransportError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import urllib.parse
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

    import urllib3

    from ._envelope import Envelope
    from ._options import Options

__all__ = ["FunctionTransport", "HttpTransport", "Transport", "TransportResponse"]


class TransportResponse(Frozen):
    """The server's answer to one envelope."""

    __slots__ = _fields = ("status", "headers", "body")

    status: int
    headers: Mapping[str, str]
    body: bytes

    def __init__(self, status: int, headers: Mapping[str, str] = FACTORY, body: bytes = b"") -> None:
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "headers", {} if headers is FACTORY else headers)
        object.__setattr__(self, "body", body)

    @property
    def detail(self) -> str:
        """What the body says about the answer, for messages; ``""`` for an empty body.

        The ``detail`` of a JSON body (``{"detail": ...}``, Sentry's and Relay's errors,
        with Relay's ``causes``), else the start of the body; at most about 200 characters,
        control characters escaped, so that it is safe in a log line.
        """
        body = self.body
        text: str | None = None
        if body.lstrip()[:1] == b"{" and len(body) <= _MAX_JSON_DETAIL:
            import json

            try:
                value = json.loads(body)
            except ValueError:
                value = None
            if isinstance(value, dict) and value.get("detail") is not None:
                detail = value["detail"]
                text = detail if isinstance(detail, str) else json.dumps(detail)
                causes = value.get("causes")
                if isinstance(causes, list) and causes and all(isinstance(c, str) for c in causes):
                    text += f" ({'; '.join(causes)})"
        if text is None:
            text = body[: 4 * DETAIL_LENGTH].decode("utf-8", "replace")
        return _excerpt(text.strip())


OK = TransportResponse(200)
#: Characters of a server's answer kept in messages.
DETAIL_LENGTH = 200
_MAX_JSON_DETAIL = 64 * 1024


def _excerpt(text: str) -> str:
    """The first :data:`DETAIL_LENGTH` characters of ``text``, with controls (and bidi overrides) escaped."""
    import unicodedata

    shown = text[:DETAIL_LENGTH]
    escaped = "".join(_escape(ch) if unicodedata.category(ch) in _UNSAFE else ch for ch in shown)
    return escaped + ("..." if len(text) > DETAIL_LENGTH else "")


_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class Transport(ABC):
    """Base class of transports. Subclasses implement :meth:`send`.

    ``send`` runs on the SDK's background thread and may block; it returns the
    server's answer (``None`` means accepted) and raises :class:`TransportError` when the
    server could not be reached.

    >>> class PrintTransport(Transport):
    ...     def send(self, envelope):
    ...         print(envelope.event_id)
    """

    @abstractmethod
    def send(self, envelope: Envelope) -> TransportResponse | None:
        """Send ``envelope`` and return the answer; raise :class:`TransportError` on network failure."""

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release resources (connections). Called once when the client closes."""


class FunctionTransport(Transport):
    """Wraps a callable ``fn(envelope)``; whatever it returns counts as accepted."""

    def __init__(self, fn: Callable[[Envelope], object]) -> None:
        self._fn = fn

    def send(self, envelope: Envelope) -> TransportResponse | None:
        """Call the function with ``envelope``."""
        self._fn(envelope)
        return None


class HttpTransport(Transport):
    """POSTs envelopes to the DSN's envelope endpoint with urllib3.

    One keep-alive connection pool, gzip bodies at ``compression_level`` (0 sends them
    uncompressed), ``X-Sentry-Auth`` and ``User-Agent`` headers. urllib3's own retries
    are off: the dispatcher decides.

    **TLS.** Certificates are always verified. The CA bundle is the ``ca_certs`` option,
    else the ``SSL_CERT_FILE`` environment variable, else ``REQUESTS_CA_BUNDLE``, else
    certifi's bundle. ``cert_file`` (with ``key_file`` when the key is a separate file)
    is presented as the client certificate.

    **Proxy.** An ``http`` DSN uses the ``http_proxy`` option; an ``https`` DSN uses
    ``https_proxy``, falling back to ``http_proxy``. HTTPS goes through the proxy in a
    ``CONNECT`` tunnel. An empty string means "no proxy", whatever the environment says.
    When the options are ``None``, the environment variables ``https_proxy`` /
    ``HTTPS_PROXY`` (for an ``https`` DSN) and ``http_proxy`` / ``HTTP_PROXY`` apply,
    unless ``no_proxy`` / ``NO_PROXY`` names the DSN's host. Credentials in the proxy
    URL (``http://user:pass@proxy:3128``) are sent as ``Proxy-Authorization: Basic``
    and are never logged.

    **Keep-alive.** With ``keep_alive`` (the default) the sockets have ``SO_KEEPALIVE``
    set, and TCP keep-alive probes every 10 s after 45 s idle where the platform allows.

    **Time.** One exchange (connect, send, the whole answer) takes at most
    ``http_timeout`` seconds in all: a server that answers slowly a byte at a time is cut
    off at that deadline, like one that does not answer at all. While a large envelope
    streams, every block handed to the connection moves the deadline to ``http_timeout``
    after it: a long upload that makes progress is not cut, one that stalls is.
    """

    def __init__(self, options: Options) -> None:
        if options.dsn is None:
            raise ValueError("HttpTransport needs a DSN")
        self._dsn: Dsn = options.dsn
        self._url = self._dsn.envelope_url
        self._compression_level = options.compression_level
        self._headers = {
            "User-Agent": USER_AGENT,
            "X-Sentry-Auth": self._dsn.auth_header(),
            "Content-Type": "application/x-sentry-envelope",
        }
        self._gzip_headers = {**self._headers, "Content-Encoding": "gzip"}
        self._http_timeout = options.http_timeout
        self._watchdog = ExchangeWatchdog()
        new_pool, self._proxy, self._secrets = pool_manager_factory(
            self._dsn,
            timeout=options.http_timeout,
            ca_certs=options.ca_certs,
            cert_file=options.cert_file,
            key_file=options.key_file,
            keep_alive=options.keep_alive,
            http_proxy=options.http_proxy,
            https_proxy=options.https_proxy,
        )
        # Made at the first send, on the background thread: urllib3, ssl and certifi are not
        # imported by ``init`` on the caller's thread. A forked child must not write to the
        # parent's keep-alive socket: it makes its own pool (or proxy manager) the same way.
        self._new_pool = new_pool
        self._pool_manager: urllib3.PoolManager | None = None
        #: Without a proxy, the connection pool of the DSN's host, called directly: the pool
        #: manager's URL parsing and pool lookup cost about a third of a request's CPU time.
        self._host_pool: urllib3.HTTPConnectionPool | None = None
        # What urlsplit(self._url) gives as path and host (an envelope URL has no query or user).
        host = self._dsn.netloc
        self._target = self._url[len(f"{self._dsn.scheme}://{host}") :]
        #: The request heads of the direct path (see :meth:`_prepared_post`), up to the ``Content-Length`` value.
        self._plain_prefix = _request_prefix(self._target, host, self._headers)
        self._gzip_prefix = _request_prefix(self._target, host, self._gzip_headers)
        _http_transports.add(self)

    @property
    def _pool(self) -> urllib3.PoolManager:
        pool = self._pool_manager
        if pool is None:
            pool = self._pool_manager = self._new_pool()
        return pool

    def _exchange(self, body: Any, headers: dict[str, str], streamed: bool) -> TransportResponse:
        """POST ``body`` and read the answer (at most :data:`~sentry_feedback._http1.MAX_ANSWER` bytes of it)."""
        if self._proxy is not None:
            response = self._pool.request(
                "POST",
                self._url,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                chunked=streamed,
            )
        else:
            pool = self._host_pool
            if pool is None:
                pool = self._host_pool = self._pool.connection_from_url(self._url)
            if not streamed:
                return self._prepared_post(pool, body, headers)
            response = pool.urlopen(
                "POST",
                self._target,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                chunked=True,
            )
        return TransportResponse(response.status, dict(response.headers.items()), response.data or b"")

    def _prepared_post(
        self, pool: urllib3.HTTPConnectionPool, body: bytes, headers: dict[str, str]
    ) -> TransportResponse:
        """The direct path: a prepared request on the pool's keep-alive connection, read by :mod:`._http1`."""
        conn: Any = pool._get_conn()  # (one the server closed while idle comes back closed)
        try:
            if conn.sock is None:
                conn.connect()
            attach_connection(conn)
            conn.sock.settimeout(self._http_timeout)
            prefix = self._gzip_prefix if headers is self._gzip_headers else self._plain_prefix
            answer = _http1.exchange(conn.sock, b"%s%d\r\n\r\n%s" % (prefix, len(body), body))
            if not answer.reusable:
                conn.close()
        except BaseException:
            conn.close()
            raise
        finally:
            pool._put_conn(conn)
        return TransportResponse(answer.status, answer.headers, answer.body)

    def _reinit_after_fork(self) -> None:
        self._host_pool = None
        inherited, self._pool_manager = self._pool_manager, None
        if inherited is not None:
            _reinit_inherited_locks(inherited)
        self._watchdog.reinit_after_fork()

    @property
    def proxy(self) -> str | None:
        """The proxy URL in use, without its credentials; ``None`` when sending directly."""
        return self._proxy

    def send(self, envelope: Envelope) -> TransportResponse | None:
        """Serialize, compress and POST ``envelope``; return the server's answer.

        An envelope up to :data:`STREAM_THRESHOLD` bytes is compressed whole and sent with
        a ``Content-Length``. A larger one, or one with an attachment read from a large
        file, is streamed: written, compressed and sent in blocks with chunked transfer
        encoding, so that it is never in memory whole. A file that cannot be read
        meanwhile raises :class:`~sentry_feedback._envelope.PayloadReadError` (the request
        is abandoned; the dispatcher sends the envelope again without that file).

        With ``debug`` (the ``sentry_feedback`` logger at ``DEBUG``) each envelope and the
        answer are logged: item types, event id, size, URL, status and time; never the
        headers or the payload.
        """
        headers = self._headers
        level = self._compression_level
        streamed = is_large(envelope)
        body: bytes | Iterator[bytes | memoryview]
        if streamed:
            size = "streamed"
            if level > 0:
                headers = self._gzip_headers
        else:
            body = b"".join(envelope.chunks())
            size = f"{len(body)} bytes"
            if level > 0:
                body = gzip_small(body, level)
                headers = self._gzip_headers
                size += f", {len(body)} gzipped"
        debug = logger.isEnabledFor(10)  # logging.DEBUG
        if debug:
            event_id = f"event_id={envelope.event_id}, " if envelope.event_id else ""
            types = ", ".join(item.type for item in envelope.items)
            logger.debug("Sending envelope [%s] (%s%s) to %s", types, event_id, size, self._url)
        started = time.monotonic()
        exchange = self._watchdog.arm(self._http_timeout)
        if streamed:
            body = _progressing(gzip_stream(envelope.chunks(), level), exchange, self._http_timeout)
        try:
            answer = self._exchange(body, headers, streamed)
        except _network_errors() as exc:
            via = f" through the proxy {self._proxy}" if self._proxy is not None else ""
            why = f"no complete answer within http_timeout ({self._http_timeout:g} s)" if exchange.fired else str(exc)
            message = self._redact(f"could not send to {self._dsn.netloc}{via}: {why}")
            if debug:
                logger.debug(
                    "Envelope failed after %.0f ms: %s",
                    (time.monotonic() - started) * 1000,
                    message,
                )
            raise TransportError(message) from exc
        finally:
            self._watchdog.disarm(exchange)
        if debug:
            elapsed = (time.monotonic() - started) * 1000
            logger.debug(
                "Envelope answered %d in %.0f ms%s",
                answer.status,
                elapsed,
                _answer_note(answer),
            )
        return answer

    def close(self) -> None:
        """Close the pooled connections and stop the deadline thread."""
        if self._pool_manager is not None:
            self._pool_manager.clear()
        self._watchdog.close()

    def _redact(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message


def _request_prefix(target: str, host: str, headers: dict[str, str]) -> bytes:
    """The head of a ``POST`` to ``target``, up to the ``Content-Length`` value."""
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


#: Envelopes larger than this (or with an attachment read from a large file) are streamed.
STREAM_THRESHOLD = 256 * 1024


def is_large(envelope: Envelope) -> bool:
    """Whether ``envelope`` is better streamed than built in memory (see :meth:`HttpTransport.send`)."""
    total = 0
    for item in envelope.items:
        if item.streamed:
            return True
        total += item.length
    return total > STREAM_THRESHOLD


def gzip_small(data: bytes, level: int) -> bytes:
    """``data`` gzip-compressed at ``level``, with a compressor sized to it.

    A default compressor sets up a 32 KiB window and 128 KiB of hash tables, which costs
    more than compressing a 2 KiB envelope: a window just larger than the data and a
    smaller hash table give the same bytes (within a few) in about a third of the time.
    """
    window = min(max(len(data).bit_length(), 9), 15)
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + window, 4)
    return compressor.compress(data) + compressor.flush()


def gzip_stream(chunks: Iterator[bytes | memoryview], level: int) -> Iterator[bytes | memoryview]:
    """``chunks`` gzip-compressed as they come (passed through as they are at ``level`` 0)."""
    if level <= 0:
        yield from chunks
        return
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def _progressing(
    chunks: Iterator[bytes | memoryview], exchange: Exchange, seconds: float
) -> Iterator[bytes | memoryview]:
    """``chunks``, each one moving the exchange's deadline to ``seconds`` after it was handed over."""
    for chunk in chunks:
        yield chunk
        exchange.extend(seconds)


def _answer_note(answer: TransportResponse) -> str:
    """For the debug log: the rate limits an answer sets, and what an error answer says."""
    limits = RateLimiter()
    limits.update(answer.status, answer.headers)
    note = ""
    left = limits.snapshot()
    if left:
        named = "" if "" in left else f" ({', '.join(sorted(left))})"  # "": all categories
        note = f", rate limited for {max(left.values()):.0f} s{named}"
    if not 200 <= answer.status < 300 and answer.status != 429 and answer.detail:
        note += f": {answer.detail}"
    return note


def pool_manager_factory(
    dsn: Dsn,
    *,
    timeout: float,
    ca_certs: str | None,
    cert_file: str | None,
    key_file: str | None,
    keep_alive: bool,
    http_proxy: str | None,
    https_proxy: str | None,
    maxsize: int = 1,
) -> tuple[Callable[[], urllib3.PoolManager], str | None, tuple[str, ...]]:
    """How to make the urllib3 pool manager for ``dsn``, as :class:`HttpTransport` documents it.

    Returns a factory (called again in a forked child), the proxy URL without credentials
    (``None``: direct), and every spelling of the proxy credentials, never to be logged.
    CA bundle, client certificate, proxy (options, then the environment) and TCP keep-alive
    are chosen here for every sender: the transport and the browser tunnel. ``maxsize`` is
    the connections kept per host. A bad proxy in an option raises ``ValueError``.
    """
    bundle = _ca_bundle(ca_certs)  # checked now: a bad option fails at ``init``
    secrets: tuple[str, ...] = ()
    shown: str | None = None
    auth: str | None = None
    proxy = _resolve_proxy(dsn, http_proxy=http_proxy, https_proxy=https_proxy)
    if proxy is not None:
        shown, user, password, source = proxy
        if user is not None:
            auth = f"{user}:{password or ''}"
            secrets = _credential_forms(auth)
        logger.debug("sending to %s through the proxy %s (%s)", dsn.netloc, shown, source)

    def new_pool() -> urllib3.PoolManager:
        # Imported here, by the first sender: importing and initializing the SDK stay cheap.
        import certifi
        import urllib3
        from urllib3.connection import HTTPConnection

        pool_options: dict[str, Any] = {
            "num_pools": 2,
            "maxsize": maxsize,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": False,
            # Passed for http DSNs too: urllib3 drops them for plain http pools and uses them
            # for an https proxy.
            "ca_certs": bundle or certifi.where(),
            "cert_reqs": "CERT_REQUIRED",
        }
        if cert_file is not None:
            pool_options["cert_file"] = cert_file
            pool_options["key_file"] = key_file
        if keep_alive:
            pool_options["socket_options"] = [
                *HTTPConnection.default_socket_options,
                *_keep_alive_socket_options(),
            ]
        if shown is None:
            manager: urllib3.PoolManager = urllib3.PoolManager(**pool_options)
        else:
            if auth is not None:
                pool_options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=auth)
            manager = urllib3.ProxyManager(shown, **pool_options)
        manager.pool_classes_by_scheme = watched_pool_classes()  # lets the watchdog find the socket
        return manager

    return new_pool, shown, secrets


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a failed exchange raises (urllib3 is imported by then: the pool is made first)."""
    import urllib3

    return (urllib3.exceptions.HTTPError, OSError, zlib.error)


def make_transport(options: Options) -> Transport | None:
    """The transport for ``options``: the ``transport`` option, else HTTP to the DSN, else ``None``."""
    custom = options.transport
    if isinstance(custom, Transport):
        return custom
    if isinstance(custom, type) and issubclass(custom, Transport):
        import inspect

        takes_options = len(inspect.signature(custom).parameters) > 0
        return custom(options) if takes_options else custom()  # type: ignore[call-arg]
    if custom is not None:
        return FunctionTransport(custom)
    if options.dsn is not None:
        return HttpTransport(options)
    return None


def _reinit_inherited_locks(manager: object) -> None:
    """In a forked child, give the connection queues of the parent's pool manager fresh locks.

    Another thread of the parent may have held a queue's lock at fork time (the worker
    does, briefly, on every send). When the inherited manager is dropped, urllib3 drains
    each queue (``weakref.finalize``, also at exit) and would block forever on that
    lock. Runs in the child, where no other thread exists, so the pools are read without
    the manager's own (possibly held) lock.
    """
    container = getattr(getattr(manager, "pools", None), "_container", None)
    if not isinstance(container, dict):
        return
    for pool in list(container.values()):
        connections = getattr(pool, "pool", None)
        if connections is None or not hasattr(connections, "mutex"):
            continue
        connections.mutex = threading.Lock()
        connections.not_empty = threading.Condition(connections.mutex)
        connections.not_full = threading.Condition(connections.mutex)
        connections.all_tasks_done = threading.Condition(connections.mutex)


#: TCP keep-alive timing where the platform lets us set it: first probe after 45 s idle,
#: then every 10 s, giving up after 6 unanswered probes.
_KEEPALIVE_IDLE = 45
_KEEPALIVE_INTERVAL = 10
_KEEPALIVE_COUNT = 6


def _keep_alive_socket_options() -> list[tuple[int, int, int]]:
    """``SO_KEEPALIVE`` plus the TCP keep-alive timers this platform has."""
    import socket

    opts = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    # TCP_KEEPIDLE on Linux and Windows; macOS calls the same timer TCP_KEEPALIVE.
    idle = getattr(socket, "TCP_KEEPIDLE", None)
    if idle is None and hasattr(socket, "TCP_KEEPALIVE"):
        idle = socket.TCP_KEEPALIVE
    for name, value in (
        (idle, _KEEPALIVE_IDLE),
        (getattr(socket, "TCP_KEEPINTVL", None), _KEEPALIVE_INTERVAL),
    ):
        if name is not None:
            opts.append((socket.IPPROTO_TCP, name, value))
    if hasattr(socket, "TCP_KEEPCNT"):
        opts.append((socket.IPPROTO_TCP, socket.TCP_KEEPCNT, _KEEPALIVE_COUNT))
    return opts


def _ca_bundle(ca_certs: str | None) -> str | None:
    """The CA bundle to verify with: ``ca_certs``, else ``SSL_CERT_FILE``, else ``REQUESTS_CA_BUNDLE``.

    ``None`` means "use certifi's bundle".
    """
    return ca_certs or os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE") or None


def _getenv(name: str) -> str | None:
    """A proxy environment variable: the lower-case spelling wins over the upper-case one.

    ``HTTP_PROXY`` is ignored in a CGI request (``REQUEST_METHOD`` set), where a client
    controls it through the ``Proxy`` header ("httpoxy"), like urllib does.
    """
    value = os.environ.get(name.lower())
    if value is None and not (name.lower() == "http_proxy" and "REQUEST_METHOD" in os.environ):
        value = os.environ.get(name.upper())
    return value.strip() if value is not None else None


def _choose_proxy(dsn: Dsn, *, http_proxy: str | None, https_proxy: str | None) -> tuple[str | None, str]:
    """The proxy URL for ``dsn`` (``None``: connect directly) and where it came from, for messages.

    The options win: ``https_proxy`` then ``http_proxy`` for an https DSN, ``http_proxy``
    for an http one; an empty string stops the search (no proxy). When every option that
    applies is ``None``, the environment variables decide, and ``no_proxy`` is honoured.
    """
    names = ("https_proxy", "http_proxy") if dsn.scheme == "https" else ("http_proxy",)
    given = {"http_proxy": http_proxy, "https_proxy": https_proxy}
    for name in names:
        value = given[name]
        if value is not None:
            return (value or None), f"option {name!r}"
    host = dsn.host[1:-1] if dsn.host.startswith("[") else dsn.host
    port = dsn.port if dsn.port is not None else (443 if dsn.scheme == "https" else 80)
    no_proxy = _getenv("no_proxy")
    if no_proxy and _bypasses_proxy(host, port, no_proxy):
        return None, "environment variable NO_PROXY"
    for name in names:
        value = _getenv(name)
        if value:
            return value, f"environment variable {name.upper()}"
    return None, "environment"


def _bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (comma-separated) names ``host``/``port``.

    Entries are ``*`` (everything), host names (``example.com`` also matches its
    subdomains, and so does ``.example.com``), IP addresses, networks in CIDR notation
    (``10.0.0.0/8``), and any of these with ``:port``. Matching ignores case.
    """
    import ipaddress

    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.startswith("["):  # [v6]:port or [v6]
            name, _, rest = entry[1:].partition("]")
            entry_port = rest[1:] if rest.startswith(":") else None
        elif entry.count(":") == 1:  # host:port (several colons: a bare IPv6 address)
            name, _, entry_port = entry.partition(":")
        if entry_port is not None and entry_port != str(port):
            continue
        if "/" in name:
            try:
                network = ipaddress.ip_network(name, strict=False)
            except ValueError:
                continue
            if address is not None and address.version == network.version and address in network:
                return True
            continue
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _resolve_proxy(
    dsn: Dsn, *, http_proxy: str | None, https_proxy: str | None
) -> tuple[str, str | None, str | None, str] | None:
    """``(proxy URL without credentials, user, password, where it came from)``, or ``None`` for no proxy.

    A bad proxy in an option raises ``ValueError``; a bad one in the environment is
    logged and ignored (sending directly), so that it cannot break ``init``.
    """
    proxy, source = _choose_proxy(dsn, http_proxy=http_proxy, https_proxy=https_proxy)
    if proxy is None:
        return None
    try:
        return (*_split_proxy_url(proxy), source)
    except ValueError as exc:
        if source.startswith("option"):
            raise ValueError(f"{source}: {exc}") from None
        logger.warning("ignoring the %s: %s", source, exc)
        return None


def _split_proxy_url(proxy: str) -> tuple[str, str | None, str | None]:
    """``(url without credentials, user, password)`` for a proxy URL; ``http://`` is assumed.

    Raises ``ValueError`` (with the credentials redacted) for a scheme urllib3 cannot use
    or a URL without a host.
    """
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    import urllib.parse

    parts = urllib.parse.urlsplit(proxy)
    scheme = parts.scheme.lower()
    shown = _without_credentials(parts)
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported proxy {shown}: the scheme must be http or https")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid proxy {shown}: bad port") from None
    if not parts.hostname:
        raise ValueError(f"invalid proxy {shown}: missing host")
    del port
    user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return shown, user, password


def _without_credentials(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme.lower()}://{netloc}"


def _credential_forms(auth: str) -> tuple[str, ...]:
    """Every spelling of the proxy credentials ``user:password`` that could end up in a message, longest first."""
    import base64
    import urllib.parse

    token = base64.b64encode(auth.encode("latin-1", "replace")).decode("ascii")
    quoted = ":".join(urllib.parse.quote(part, safe="") for part in auth.split(":", 1))
    forms = {form for form in (auth, quoted, token) if len(form) > 1}
    return tuple(sorted(forms, key=len, reverse=True))


# One fork hook for all HTTP transports (hooks cannot be unregistered, so not one per transport).
_http_transports: weakref.WeakSet[HttpTransport] = weakref.WeakSet()


def _reinit_transports_in_child() -> None:
    for transport in list(_http_transports):
        transport._reinit_after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reinit_transports_in_child)
