"""A tunnel for browser SDKs: their envelopes, sent to your own origin, forwarded to Sentry.

Browser SDKs take a ``tunnel`` option (``Sentry.init({dsn, tunnel: "/tunnel"})``): they
post their envelopes there instead of to Sentry, out of reach of ad blockers. A
:class:`Tunnel` is that endpoint, as a WSGI app, an ASGI app (:attr:`Tunnel.asgi`) and a
call for any framework's view (:meth:`Tunnel.forward`)::

    from sentry_feedback.tunnel import Tunnel

    tunnel = Tunnel(allowed=["https://key@o1.ingest.sentry.io/42"])

It forwards an envelope only when the DSN in its header is one of ``allowed``, to the
server that DSN names in the configuration (never to one the request names), streams the
body with a size limit, passes the client's address in ``X-Forwarded-For`` and gives the
server's answer, rate limits included, back to the browser. See the "Tunnel for browser
SDKs" page of the documentation.
"""

from __future__ import annotations

from ._answers import TunnelResponse
from ._asgi import AsgiTunnel
from ._options import DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE, DEFAULT_TIMEOUT, TunnelOptions
from ._reading import BodyReader
from ._tunnel import Tunnel

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_TIMEOUT",
    "AsgiTunnel",
    "BodyReader",
    "Tunnel",
    "TunnelOptions",
    "TunnelResponse",
]
