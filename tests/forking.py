"""Forking helpers for tests: children never return into pytest."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

import pytest

import sentry_feedback as sf

#: How long a child may take before it counts as hung (and is killed).
CHILD_TIMEOUT = 10.0


def wait_exit(pid: int, timeout: float = CHILD_TIMEOUT) -> int:
    """The exit code of child ``pid``; kill it and fail the test if it has not exited within ``timeout``."""
    status: list[int] = []
    waiter = threading.Thread(target=lambda: status.append(os.waitpid(pid, 0)[1]), daemon=True)
    waiter.start()
    waiter.join(timeout)
    if waiter.is_alive():
        os.kill(pid, signal.SIGKILL)
        waiter.join(CHILD_TIMEOUT)
        pytest.fail(f"child {pid} did not exit within {timeout} s (deadlocked?)")
    return os.waitstatus_to_exitcode(status[0])


def fork_running(child: Callable[[], int]) -> int:
    """Fork; the child runs ``child()`` and exits with its result (1 if it raised), never returning."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = child()
        finally:
            os._exit(code)
    return pid


def send_from_forked_child(message: str, timeout: float = 10.0) -> int:
    """Fork; the child captures ``message``, flushes and exits. Return the child's exit code."""
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            ok = sf.capture_feedback(message) is not None and sf.flush(timeout)
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
