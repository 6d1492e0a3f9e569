"""A flood of hostile requests: the receiver's memory stays bounded and ordinary clients are still served.

The receiver runs in a child process, so that its peak resident memory (``VmHWM``) is its
own. Eight threads send gzip bombs, two send envelopes of too many items and two send
unauthenticated bodies, while another sends ordinary feedback. Without the memory budget,
eight bombs inflating to ``max_body_size`` at once need about 8 x 32 MiB (the inflated
bytes and their copy); with it the bodies hold at most the budget (3 x ``max_body_size``,
48 MiB here).
"""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import pytest
import urllib3

from sentry_feedback import Envelope, EnvelopeItem
from sentry_feedback.server import LocalReceiver

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")

MiB = 1024 * 1024
MAX_BODY = 16 * MiB
AUTH = "Sentry sentry_version=7, sentry_key=public"
BOMBERS = 8
ROUNDS = 6
#: Peak memory the child may gain over its idle state: the 48 MiB budget plus room for threads,
#: parsed envelopes and the allocator. Without the budget eight bombs need about 8 x 32 MiB.
ALLOWED_GROWTH = 100 * MiB

CHILD = textwrap.dedent(
    f"""
    import sys
    from sentry_feedback.server import LocalReceiver

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    with LocalReceiver(max_body_size={MAX_BODY}, memory_budget=0, record_requests=0) as receiver:
        print(receiver.url, peak(), flush=True)
        sys.stdin.readline()
        print(peak(), receiver._memory.peak, receiver._memory.capacity, flush=True)
    """
)


def feedback_envelope(number: int) -> bytes:
    item = EnvelopeItem.from_json(
        "feedback", {"type": "feedback", "contexts": {"feedback": {"message": f"ordinary {number}"}}}
    )
    return Envelope({"event_id": f"{number:032x}"}, [item]).serialize()


def test_memory_stays_bounded_and_ordinary_clients_are_served_during_a_flood() -> None:
    bomb = gzip.compress(b"{}\n" + b'{"type":"attachment","filename":"z","length":0}\n\n' * 10 + b"\0" * (80 * MiB))
    many_items = b"{}\n" + b'{"type":"attachment","filename":"z","length":0}\n\n' * 1001
    unauthenticated = b"x" * MiB
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        url, idle_peak = child.stdout.readline().split()
        endpoint = f"{url}/api/1/envelope/"
        answers: Counter[tuple[str, int]] = Counter()
        lock = threading.Lock()

        def flood(kind: str, body: bytes, headers: dict[str, str]) -> None:
            http = urllib3.PoolManager(retries=False, timeout=60)
            for _ in range(ROUNDS):
                status = http.request("POST", endpoint, body=body, headers=headers).status
                with lock:
                    answers[(kind, status)] += 1

        kinds = [
            ("bomb", bomb, {"X-Sentry-Auth": AUTH, "Content-Encoding": "gzip"}),
            ("many-items", many_items, {"X-Sentry-Auth": AUTH}),
            ("unauthenticated", unauthenticated, {"X-Sentry-Auth": AUTH.replace("public", "wrong")}),
        ]
        plan = [kinds[0]] * BOMBERS + [kinds[1]] * 2 + [kinds[2]] * 2
        threads = [threading.Thread(target=flood, args=args, daemon=True) for args in plan]
        for thread in threads:
            thread.start()
        ordinary = urllib3.PoolManager(retries=False, timeout=60)
        statuses = [
            ordinary.request("POST", endpoint, body=feedback_envelope(n), headers={"X-Sentry-Auth": AUTH}).status
            for n in range(30)
        ]
        for thread in threads:
            thread.join(120)
        child.stdin.write("\n")
        child.stdin.flush()
        final_peak, budget_peak, capacity = (int(value) for value in child.stdout.readline().split())
    finally:
        child.kill()
        child.wait(10)

    assert statuses == [200] * 30  # ordinary feedback was never turned away
    assert set(answers) <= {
        ("bomb", 413),
        ("bomb", 503),
        ("many-items", 400),
        ("many-items", 503),
        ("unauthenticated", 401),
        ("unauthenticated", 503),
    }
    assert sum(answers.values()) == (BOMBERS + 4) * ROUNDS
    assert answers[("bomb", 413)] > 0 and answers[("many-items", 400)] > 0 and answers[("unauthenticated", 401)] > 0
    assert budget_peak <= capacity == 3 * MAX_BODY
    assert final_peak - int(idle_peak) < ALLOWED_GROWTH, f"peak grew by {(final_peak - int(idle_peak)) / MiB:.0f} MiB"


def test_connections_past_the_cap_wait_for_a_free_slot() -> None:
    with LocalReceiver(max_connections=2) as receiver:
        idle = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(2)]
        try:
            for sock in idle:  # both slots taken: each connection got its thread
                sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 404")
            waiting = socket.create_connection(("127.0.0.1", receiver.port))
            waiting.settimeout(0.3)
            waiting.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            with pytest.raises(socket.timeout):
                waiting.recv(100)  # accepted by the kernel, not served yet
            idle.pop().close()
            waiting.settimeout(10)
            assert waiting.recv(100).startswith(b"HTTP/1.1 404")
            waiting.close()
        finally:
            for sock in idle:
                sock.close()
