"""The tunnel as a WSGI application, and :meth:`Tunnel.forward` for any framework's view.

Both read the body through a blocking ``read(size)``; the steps themselves (checks, the
allow-list, the upstream exchange) are the :class:`~._forwarder.Forwarder`'s, shared with
the ASGI app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._dsn import Dsn
from ._answers import AnswerNow, BodyFailed, TunnelResponse
from ._forwarder import Forwarder
from ._options import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_TIMEOUT,
    TunnelOptions,
    normalize_origins,
    parse_allowed,
)
from ._reading import BodyReader, Reading, drain, environ_headers, lower_headers, read_header, reader

if TYPE_CHECKING:
    from ..wsgi import StartResponse
    from ._asgi import AsgiTunnel

__all__ = ["Tunnel"]


class Tunnel:
    """A WSGI application forwarding browser SDK envelopes to the Sentry projects of ``allowed`` only.

    ``allowed`` is one DSN or a list of DSNs (strings or :class:`~sentry_feedback.Dsn`):
    the ones the browser SDKs use. An envelope is forwarded when the ``dsn`` of its
    header names one of them (scheme, host, port, path prefix, project id and, with
    ``match_public_key``, the public key), to the envelope endpoint of the *configured*
    DSN; anything else is refused with 403 before anything is contacted: never an open proxy.

    Serve ``tunnel`` (WSGI) or ``tunnel.asgi`` (ASGI) at a path of your site, or call
    ``tunnel.forward(...)`` from a view::

        tunnel = Tunnel(allowed=["https://key@o1.ingest.sentry.io/42"])

    Options:

    * ``max_body_size`` (20 MiB): larger bodies are refused (413), by their
      ``Content-Length`` or, without one, once that many bytes were read;
    * ``max_header_size`` (64 KiB): the longest envelope header line;
    * ``timeout`` (10 s): for connecting upstream, each read of its answer, and (ASGI)
      each wait on the client's body;
    * ``use_x_forwarded_for`` (``False``): keep the incoming ``X-Forwarded-For`` chain
      (only behind a proxy that sets it) before the peer's address, else send the peer's
      address alone;
    * ``cors_origins`` (none): origins (or ``"*"``) allowed to post cross-origin; the
      usual same-origin tunnel needs none;
    * ``max_connections`` (10): kept-alive connections per upstream host;
    * ``ca_certs``, ``cert_file``, ``key_file``, ``http_proxy``, ``https_proxy``,
      ``keep_alive``: TLS and proxies, as the SDK's options of the same names.

    The WSGI app answers whatever path it is mounted at; :meth:`forward` serves one
    request from any framework; :attr:`asgi` is the ASGI app. No exception reaches the
    caller: failures are logged on the ``sentry_feedback`` logger and answered 500.
    """

    def __init__(
        self,
        allowed: Iterable[str | Dsn] | str | Dsn,
        *,
        match_public_key: bool = True,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
        use_x_forwarded_for: bool = False,
        cors_origins: Iterable[str] | str = (),
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ca_certs: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        http_proxy: str | None = None,
        https_proxy: str | None = None,
        keep_alive: bool = True,
    ) -> None:
        #: The validated configuration.
        self.options = TunnelOptions(
            allowed=parse_allowed(allowed),
            match_public_key=match_public_key,
            max_body_size=max_body_size,
            max_header_size=max_header_size,
            timeout=timeout,
            use_x_forwarded_for=use_x_forwarded_for,
            cors_origins=normalize_origins(cors_origins),
            max_connections=max_connections,
            ca_certs=ca_certs,
            cert_file=cert_file,
            key_file=key_file,
            http_proxy=http_proxy,
            https_proxy=https_proxy,
            keep_alive=keep_alive,
        )
        #: The steps of a request; the ASGI app shares them.
        self._forwarder = Forwarder(self.options)
        self._asgi: AsgiTunnel | None = None
        self._asgi_lock = threading.Lock()

    # -- the entry points ---------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one WSGI request (any path, any ``SCRIPT_NAME``)."""
        stream = environ.get("wsgi.input")
        method = environ.get("REQUEST_METHOD")
        peer = environ.get("REMOTE_ADDR")
        response = self._serve(
            method if isinstance(method, str) else "",
            environ_headers(environ),
            peer if isinstance(peer, str) else None,
            reader(stream),
            # PEP 3333: without Content-Length the body is empty, unless the server says it ends it.
            length_required=not environ.get("wsgi.input_terminated"),
        )
        headers = list(response.headers.items())
        if response.status != 204:
            headers.append(("Content-Length", str(len(response.body))))
        start_response(response.status_line, headers)
        return [response.body]

    def forward(
        self,
        method: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: BodyReader,
        *,
        client_address: str | None = None,
    ) -> TunnelResponse:
        """Serve one request of any framework: its method, headers, body and peer address.

        ``body`` is read to its end (or to ``Content-Length`` when the headers give one);
        ``client_address`` is the address of the direct peer (``REMOTE_ADDR``). Turn the
        result into the framework's response: ``status``, ``headers`` and ``body``.
        """
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        return self._serve(method, pairs, client_address, reader(body), length_required=False)

    @property
    def asgi(self) -> AsgiTunnel:
        """This tunnel as an ASGI application (made once, with the default thread count)."""
        with self._asgi_lock:
            if self._asgi is None:
                from ._asgi import AsgiTunnel

                self._asgi = AsgiTunnel(self)
            return self._asgi

    def close(self) -> None:
        """Close the pooled upstream connections (a later request opens new ones)."""
        self._forwarder.close()

    # -- the WSGI app and forward() -----------------------------------------------------------

    def _serve(
        self,
        method: str,
        pairs: Iterable[tuple[str, str]],
        peer: str | None,
        next_chunk: Callable[[int], bytes],
        *,
        length_required: bool,
    ) -> TunnelResponse:
        started = time.monotonic()
        steps = self._forwarder
        try:
            headers = lower_headers(pairs)
            reading: Reading | None = None
            try:
                incoming = steps.begin(method, headers, peer, length_required=length_required)
                reading = Reading(incoming, self.options)
                reading.check_declared()
                line = read_header(reading, next_chunk)
                route = steps.route(line)
                response = steps.exchange(incoming, route, reading.rest(next_chunk), started)
            except AnswerNow as answer:
                if reading is not None:
                    drain(reading, next_chunk)
                response = steps.refused(answer, peer)
            except BodyFailed as failed:
                response = steps.body_failed(failed, peer)
            return steps.finish(response, headers)
        except Exception:
            return steps.failed()
