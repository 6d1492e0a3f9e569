"""Event, trace and span ids: the SDK's own generator, unaffected by ``random.seed`` and reseeded after fork."""

from __future__ import annotations

import os
import random
import re
import sys
import uuid

import pytest

import sentry_feedback as sf
from sentry_feedback import _random
from sentry_feedback.testing import MockTransport


def test_event_ids_are_uuid4_hex() -> None:
    ids = {_random.event_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in list(ids)[:200]:
        parsed = uuid.UUID(value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_trace_and_span_ids() -> None:
    traces = {_random.trace_id() for _ in range(1000)}
    spans = {_random.span_id() for _ in range(1000)}
    assert len(traces) == len(spans) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and t != "0" * 32 for t in traces)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) and s != "0" * 16 for s in spans)
    assert all(0.0 <= _random.sample_rand() < 1.0 for _ in range(1000))


def test_the_applications_random_seed_does_not_repeat_ids() -> None:
    random.seed(1234)
    first = (_random.event_id(), _random.trace_id())
    random.seed(1234)
    second = (_random.event_id(), _random.trace_id())
    assert first[0] != second[0] and first[1] != second[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next ids and leave at once
        try:
            os.write(write_end, f"{_random.event_id()} {_random.trace_id()} {_random.span_id()}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read().decode().split()
    os.waitpid(pid, 0)
    parent = [_random.event_id(), _random.trace_id(), _random.span_id()]
    assert len(child) == 3
    assert all(a != b for a, b in zip(child, parent, strict=True))


def test_events_and_feedback_carry_generated_ids() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    feedback_id = sf.capture_feedback("ids")
    error_id = sf.capture_message("ids", level="error")
    assert sf.flush(5)
    assert feedback_id and error_id and feedback_id != error_id
    assert uuid.UUID(feedback_id).version == 4
    assert transport.feedback[0]["event_id"] == feedback_id


def test_a_uuid_object_is_accepted_as_an_associated_event_id() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    linked = uuid.uuid4()
    assert sf.capture_feedback("linked", associated_event_id=linked)
    assert sf.flush(5)
    assert transport.feedback[0]["contexts"]["feedback"]["associated_event_id"] == linked.hex


def test_importing_the_sdk_does_not_import_uuid_or_platform() -> None:
    import subprocess

    heavy = ("uuid", "platform", "importlib.resources", "tempfile")
    code = f"import sys, sentry_feedback; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")}  # as run by users
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert result.stdout.strip() == "[]"
