"""The tunnel as gunicorn and uvicorn serve it in the server tests (imported by the server, not by pytest).

Configured by the environment: ``TUNNEL_TEST_ALLOWED`` (the allowed DSN) and ``TUNNEL_TEST_MAX_BODY_SIZE``.
"""

from __future__ import annotations

import logging
import os

from sentry_feedback.tunnel import Tunnel

logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")

tunnel = Tunnel(
    allowed=[os.environ["TUNNEL_TEST_ALLOWED"]],
    max_body_size=int(os.environ.get("TUNNEL_TEST_MAX_BODY_SIZE", str(20 * 1024 * 1024))),
)
wsgi_application = tunnel
asgi_application = tunnel.asgi
