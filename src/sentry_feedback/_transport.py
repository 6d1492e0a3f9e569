"""Transports: how one envelope reaches the server.

A transport does I/O only: it sends one envelope and reports the server's answer.
Queueing, rate limits and client reports are the same for every transport and live in
:mod:`sentry_feedback._dispatch`, so a custom transport never has to re-implement them.
"""

from __future__ import annotations

import gzip
import logging
import os
import weakref
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._dsn import USER_AGENT, Dsn
from .exceptions import TransportError

if TYPE_CHECKING:
    from ._envelope import Envelope
    from ._options import Options

__all__ = ["FunctionTransport", "HttpTransport", "Transport", "TransportResponse"]

logger = logging.getLogger("sentry_feedback")


@dataclass(frozen=True)
class TransportResponse:
    """The server's answer to one envelope."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


OK = TransportResponse(200)


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

    One keep-alive connection pool, certifi's CA bundle (or ``ca_certs``), gzip bodies
    at ``compression_level`` (0 sends them uncompressed), ``X-Sentry-Auth`` and
    ``User-Agent`` headers. urllib3's own retries are off: the dispatcher decides.
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
        # Imported here so that importing the SDK stays cheap for applications.
        import certifi
        import urllib3

        self._network_errors = (urllib3.exceptions.HTTPError, OSError, zlib.error)
        timeout = urllib3.Timeout(connect=options.http_timeout, read=options.http_timeout)
        pool_options: dict[str, object] = {"num_pools": 2, "maxsize": 1, "timeout": timeout, "retries": False}
        if self._dsn.scheme == "https":
            pool_options["ca_certs"] = options.ca_certs or certifi.where()
            pool_options["cert_reqs"] = "CERT_REQUIRED"
        self._pool = urllib3.PoolManager(**pool_options)  # type: ignore[arg-type]

        # A forked child must not write to the parent's keep-alive socket: give it its own pool.
        ref = weakref.ref(self)

        def new_pool_in_child() -> None:
            transport = ref()
            if transport is not None:
                transport._pool = urllib3.PoolManager(**pool_options)  # type: ignore[arg-type]

        os.register_at_fork(after_in_child=new_pool_in_child)

    def send(self, envelope: Envelope) -> TransportResponse | None:
        """Serialize, compress and POST ``envelope``; return the server's answer."""
        body = envelope.serialize()
        headers = self._headers
        if self._compression_level > 0:
            body = gzip.compress(body, compresslevel=self._compression_level, mtime=0)
            headers = {**headers, "Content-Encoding": "gzip"}
        try:
            response = self._pool.request("POST", self._url, body=body, headers=headers, retries=False, redirect=False)
        except self._network_errors as exc:
            raise TransportError(f"could not send to {self._dsn.netloc}: {exc}") from exc
        return TransportResponse(response.status, dict(response.headers.items()), response.data or b"")

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()


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
