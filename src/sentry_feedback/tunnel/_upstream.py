"""The tunnel's side of HTTP: one urllib3 pool per allowed server, with the SDK's TLS and proxy rules.

CA bundle, client certificate, proxies (options, then ``https_proxy``/``http_proxy`` and
``no_proxy`` from the environment) and TCP keep-alive are chosen exactly as the SDK's
``HttpTransport`` chooses them. The pools hold ``max_connections`` connections per host,
since a tunnel forwards many requests at once. A forked child (gunicorn's workers after
``--preload``) builds its own pools instead of writing to the parent's sockets.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._dsn import Dsn
from .._transport import pool_manager_factory
from ._options import TunnelOptions

if TYPE_CHECKING:
    import urllib3

__all__: list[str] = []

logger = logging.getLogger("sentry_feedback")

#: The most bytes of the server's answer passed back to the browser (Sentry's answers are tiny).
MAX_ANSWER = 64 * 1024


class UpstreamError(Exception):
    """The server could not be reached or did not answer in time: ``status`` is 502 or 504.

    ``detail`` (for the log) says why; ``public`` is what the client is told: the host,
    which its own DSN names, and no more (no proxy, no internal error text).
    """

    def __init__(self, status: int, detail: str, public: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.public = public


class Answer:
    """The server's answer: status, the headers kept, and the body (at most :data:`MAX_ANSWER` bytes)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Pool:
    """The pool manager for one server, and what messages about it may show."""

    def __init__(self, manager: urllib3.PoolManager, proxy: str | None, secrets: tuple[str, ...]) -> None:
        self.manager = manager
        self.proxy = proxy
        self.secrets = secrets


class Upstream:
    """POSTs bodies to the allowed servers: one pool per scheme and ``host:port``."""

    def __init__(self, allowed: Iterable[Dsn], options: TunnelOptions) -> None:
        self._options = options
        self._servers = {(dsn.scheme, dsn.netloc): dsn for dsn in allowed}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pools = {key: self._new_pool(dsn) for key, dsn in self._servers.items()}  # bad proxies raise now

    def _new_pool(self, dsn: Dsn) -> _Pool:
        options = self._options
        new_manager, proxy, secrets = pool_manager_factory(
            dsn,
            timeout=options.timeout,
            ca_certs=options.ca_certs,
            cert_file=options.cert_file,
            key_file=options.key_file,
            keep_alive=options.keep_alive,
            http_proxy=options.http_proxy,
            https_proxy=options.https_proxy,
            maxsize=options.max_connections,
        )
        return _Pool(new_manager(), proxy, secrets)

    def _pool(self, dsn: Dsn) -> _Pool:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._pid = os.getpid()
                self._pools = {key: self._new_pool(server) for key, server in self._servers.items()}
            return self._pools[(dsn.scheme, dsn.netloc)]

    def post(self, dsn: Dsn, body: Iterable[bytes], headers: dict[str, str], *, chunked: bool) -> Answer:
        """POST ``body`` to ``dsn``'s envelope endpoint; the answer, or :class:`UpstreamError`.

        Exceptions raised by ``body`` itself (the client's body ending badly) pass through
        unchanged; urllib3 then closes the connection, so the server never sees a
        complete request.
        """
        import urllib3

        pool = self._pool(dsn)
        timeout = urllib3.Timeout(connect=self._options.timeout, read=self._options.timeout)
        try:
            response = pool.manager.urlopen(
                "POST",
                dsn.envelope_url,
                body=body,
                headers=headers,
                chunked=chunked,
                timeout=timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
            try:
                data = response.read(MAX_ANSWER + 1)
            except BaseException:
                response.close()
                raise
            if len(data) > MAX_ANSWER:
                response.close()  # not worth reading to the end to keep the connection
                data = b""  # cut JSON would be worse than none
            else:
                response.release_conn()
        except urllib3.exceptions.NewConnectionError as exc:  # a subclass of the timeout errors
            raise UpstreamError(502, self._message(pool, dsn, exc), f"could not forward to {dsn.netloc}") from exc
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            message = self._message(pool, dsn, exc, f"no answer within {self._options.timeout:g} s")
            raise UpstreamError(504, message, f"could not forward to {dsn.netloc}: no answer in time") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamError(502, self._message(pool, dsn, exc), f"could not forward to {dsn.netloc}") from exc
        kept = {}
        for name in ("Content-Type", "Retry-After", "X-Sentry-Rate-Limits"):
            value = response.headers.get(name)
            if value is not None and value.isprintable() and value.isascii():
                kept[name] = value
        return Answer(response.status, kept, data)

    def _message(self, pool: _Pool, dsn: Dsn, exc: BaseException, why: str | None = None) -> str:
        via = f" through the proxy {pool.proxy}" if pool.proxy is not None else ""
        message = f"could not forward to {dsn.netloc}{via}: {why or exc}"
        for secret in pool.secrets:
            message = message.replace(secret, "***")
        return message

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            for pool in self._pools.values():
                pool.manager.clear()
