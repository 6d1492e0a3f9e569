"""What a LocalReceiver keeps in memory: a bounded number of recorded requests, never every body."""

from __future__ import annotations

import pytest
import urllib3

from sentry_feedback.server import LocalReceiver, _receiver

AUTH = "Sentry sentry_version=7, sentry_key=public, sentry_client=sentry-feedback/0.1.0"


def post(receiver: LocalReceiver, body: bytes, *, key: str = "public") -> int:
    auth = AUTH.replace("sentry_key=public", f"sentry_key={key}")
    response = urllib3.request(
        "POST", receiver.url + f"/api/{receiver.project_id}/envelope/", body=body, headers={"X-Sentry-Auth": auth}
    )
    return response.status


def test_only_the_last_requests_are_kept_but_all_are_counted() -> None:
    with LocalReceiver(record_requests=3) as receiver:
        for number in range(5):
            assert post(receiver, f"not an envelope {number}".encode()) == 400
        assert receiver.wait_for_envelopes(5, timeout=5)
        assert [r.body for r in receiver.received] == [f"not an envelope {n}".encode() for n in (2, 3, 4)]


def test_a_receiver_that_records_nothing_still_counts() -> None:
    with LocalReceiver(record_requests=0) as receiver:
        assert post(receiver, b"x", key="wrong") == 401
        assert post(receiver, b"y") == 400
        assert receiver.wait_for_envelopes(2, timeout=5)
        assert receiver.received == []


def test_kept_bodies_stay_within_the_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_receiver, "RECORDED_BODY_BUDGET", 250)
    with LocalReceiver() as receiver:
        for _ in range(10):
            assert post(receiver, b"z" * 100) == 400
        assert receiver.wait_for_envelopes(10, timeout=5)
        assert sum(len(r.body) for r in receiver.received) <= 250
        assert len(receiver.received) == 2


def test_record_requests_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="record_requests"):
        LocalReceiver(record_requests=-1)
