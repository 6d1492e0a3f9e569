"""Fixtures of the tunnel tests: a LocalReceiver as Sentry, and the tunnel under real servers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from sentry_feedback.server import LocalReceiver
from sentry_feedback.tunnel import Tunnel

from .servers import CountingServer, uvicorn_server, werkzeug_server

Serve = Callable[[Tunnel], str]


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    """Sentry, played by a LocalReceiver on 127.0.0.1."""
    with LocalReceiver() as server:
        yield server


@pytest.fixture
def counting() -> Iterator[CountingServer]:
    """A server that must not be contacted: it counts the connections it gets."""
    server = CountingServer()
    yield server
    server.close()


@pytest.fixture(params=["wsgi", "asgi"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """``serve(tunnel)``: the tunnel's URL, served as WSGI (Werkzeug) or as ASGI (uvicorn) until the test ends."""
    with contextlib.ExitStack() as stack:

        def start(tunnel: Tunnel) -> str:
            stack.callback(tunnel.close)
            if request.param == "wsgi":
                url = stack.enter_context(werkzeug_server(tunnel))
            else:
                url = stack.enter_context(uvicorn_server(tunnel.asgi))
            return f"{url}/tunnel"

        yield start
