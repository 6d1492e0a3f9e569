"""Fixtures for the fault-injection suite: servers started and stopped per test, and no leaked threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import reset

from .servers import Fault, FaultServer, RefusedPort

#: How long teardown waits for the threads a test started (SDK worker, servers) to end.
THREAD_GRACE = 10.0


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    """Fail the test if a thread it started (SDK worker, server thread) outlives it."""
    before = {thread.ident for thread in threading.enumerate()}
    yield
    reset()  # closes the client without waiting: its worker ends after what it is doing now
    deadline = time.monotonic() + THREAD_GRACE
    for thread in threading.enumerate():
        if thread.ident not in before and thread is not threading.current_thread():
            thread.join(max(deadline - time.monotonic(), 0.0))
    leftover = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not leftover, f"threads still running after the test: {leftover}"


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    """The well-behaved server behind the fault servers: stores envelopes by event id."""
    with LocalReceiver() as local:
        yield local


MakeFaultServer = Callable[..., FaultServer]


@pytest.fixture
def fault_server(receiver: LocalReceiver) -> Iterator[MakeFaultServer]:
    """``fault_server(faults=(), then=Forward())``: a started :class:`FaultServer` in front of ``receiver``."""
    servers: list[FaultServer] = []

    def make(faults: tuple[Fault, ...] | list[Fault] = (), *, then: Fault | None = None) -> FaultServer:
        server = FaultServer(faults, then=then, upstream=receiver).start()
        servers.append(server)
        return server

    yield make
    reset()  # the client stops before its server does
    for server in servers:
        server.stop()


@pytest.fixture
def refused_port() -> Iterator[RefusedPort]:
    """A port of 127.0.0.1 that refuses connections."""
    with RefusedPort() as port:
        yield port
