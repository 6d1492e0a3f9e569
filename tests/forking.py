"""Forking helpers for tests: children never return into pytest."""

from __future__ import annotations

import os

import sentry_feedback as sf


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
