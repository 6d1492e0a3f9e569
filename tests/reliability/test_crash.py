"""Crash test: SIGKILL while the server is down; the next process delivers what the cache holds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import sentry_feedback as sf
from sentry_feedback.server import LocalReceiver

WORKER = Path(__file__).with_name("crash_worker.py")
N = 30


def _down_dsn() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://public@127.0.0.1:{port}/1"


def _crash(cache: Path, wait: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), _down_dsn(), str(cache), str(N), wait],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "captured"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def _recover(cache: Path) -> list[str]:
    with LocalReceiver() as receiver:
        sf.init(receiver.dsn, cache_dir=str(cache))
        assert receiver.wait_for_envelopes(N, timeout=30)
        sf.close(5)
        messages = [fb.message for fb in receiver.store.list_feedback()]
        assert len(receiver.received) == len(messages)  # each sent once
        return messages


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_everything_handled_before_the_crash_is_delivered_after_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _crash(cache, "flush")
    messages = _recover(cache)
    assert sorted(messages) == sorted(f"crash feedback {i}" for i in range(N))  # N of N
    assert not [p for p in cache.iterdir() if p.name.endswith((".envelope", ".sending"))]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_crash_right_after_capturing_loses_nothing(tmp_path: Path) -> None:
    # Envelopes with in-memory attachments are on disk before capture_feedback returns.
    cache = tmp_path / "cache"
    _crash(cache, "none")
    messages = _recover(cache)
    print(f"\ndelivered after an immediate SIGKILL: {len(messages)} of {N}")
    assert sorted(messages) == sorted(f"crash feedback {i}" for i in range(N))
    assert not [p for p in cache.iterdir() if not p.is_dir()]  # journal recovered and gone, every file sent


_DRAIN = """
import sys
import sentry_feedback as sf
sf.init(sys.argv[1], cache_dir=sys.argv[2])
print(sf.flush(30), flush=True)
sf.close(5)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_processes_recovering_the_same_crash_at_once_send_each_envelope_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _crash(cache, "none")
    assert [p for p in cache.iterdir() if p.name.endswith(".journal")], "capture wrote to the journal"
    with LocalReceiver() as receiver:
        drains = [
            subprocess.Popen(
                [sys.executable, "-c", _DRAIN, receiver.dsn, str(cache)], stdout=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        for proc in drains:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0 and out.strip() == "True", out
        messages = [fb.message for fb in receiver.store.list_feedback()]
        assert sorted(messages) == sorted(f"crash feedback {i}" for i in range(N))  # N of N, each once
        assert len(receiver.received) == N
