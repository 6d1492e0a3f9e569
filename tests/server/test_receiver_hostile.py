"""Hostile envelopes get a 400 with a reason, never a 500, a dropped connection or unbounded work."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
import urllib3

from sentry_feedback.server import LocalReceiver, _http, _ingest

AUTH = "Sentry sentry_version=7, sentry_key=public"
FEEDBACK_ITEM = b'{"type":"feedback"}\n'


@pytest.fixture(scope="module")
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver(record_requests=0) as local:
        yield local


def post(receiver: LocalReceiver, body: bytes, **headers: str) -> tuple[int, str]:
    response = urllib3.request(
        "POST",
        receiver.url + f"/api/{receiver.project_id}/envelope/",
        body=body,
        headers={"X-Sentry-Auth": AUTH, **headers},
        retries=False,
        timeout=30,
    )
    return response.status, json.loads(response.data).get("detail", "")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[" * 100_000 + b"\n", "envelope header is nested too deeply"),
        (b"{}\n" + FEEDBACK_ITEM + b"[" * 100_000 + b"\n", "feedback item payload is nested too deeply"),
        (
            b"{}\n"
            + FEEDBACK_ITEM
            + b'{"contexts":{"feedback":{"message":"x"}},"extra":'
            + b"[" * 5000
            + b"]" * 5000
            + b"}\n",
            "feedback item payload is nested too deeply",
        ),
        (
            b"{}\n" + FEEDBACK_ITEM + b'{"contexts":{"feedback":{"message":"\\ud800 lone"}}}\n',
            "invalid text in the envelope: surrogates not allowed",
        ),
    ],
    ids=["deep-header", "deep-payload", "deep-extra", "lone-surrogate"],
)
def test_odd_json_is_a_400_with_a_reason(receiver: LocalReceiver, body: bytes, detail: str) -> None:
    assert post(receiver, body) == (400, detail)
    assert receiver.store.list_feedback() == []


def test_the_item_count_is_capped(receiver: LocalReceiver) -> None:
    limit = _ingest.MAX_ENVELOPE_ITEMS
    items = b'{"type":"attachment","length":0}\n\n'
    assert post(receiver, b"{}\n" + items * (limit + 1)) == (400, f"envelope has more than {limit} items")


def test_a_small_gzip_body_of_a_million_empty_items_is_refused(receiver: LocalReceiver) -> None:
    bomb = gzip.compress(b"{}\n" + b'{"type":"x","length":0}\n\n' * 1_500_000)
    assert len(bomb) < 200_000
    status, detail = post(receiver, bomb, **{"Content-Encoding": "gzip"})
    assert (status, detail) == (400, f"envelope has more than {_ingest.MAX_ENVELOPE_ITEMS} items")


def test_the_listen_backlog_fits_bursts_of_clients(receiver: LocalReceiver) -> None:
    assert _http.LISTEN_BACKLOG >= 128
    assert _http.Server.request_queue_size == _http.LISTEN_BACKLOG


def test_bodies_past_the_memory_budget_get_503_and_the_budget_comes_back() -> None:
    with LocalReceiver(max_body_size=10_000, memory_budget=30_000, record_requests=0) as receiver:
        memory = receiver._memory
        assert memory.capacity == 30_000
        assert memory.take(29_000, small=True)  # as if other requests held it
        body = b"{}\n" + b'{"type":"attachment","length":2000,"filename":"a.bin"}\n' + b"x" * 2000 + b"\n"
        response = urllib3.request(
            "POST",
            receiver.url + f"/api/{receiver.project_id}/envelope/",
            body=body,
            headers={"X-Sentry-Auth": AUTH},
            retries=False,
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert response.headers["Connection"] == "close"
        memory.give(29_000)
        assert post(receiver, body)[0] == 200
        assert memory.in_use == 0  # every request gives back what it held


def test_inflating_takes_the_decoded_bytes_from_the_budget() -> None:
    with LocalReceiver(max_body_size=100_000, memory_budget=0, record_requests=0) as receiver:
        memory = receiver._memory
        assert memory.capacity == 300_000  # three times max_body_size: one largest request fits
        decoded = b"{}\n" + b'{"type":"attachment","length":90000,"filename":"a.bin"}\n' + b"y" * 90_000 + b"\n"
        assert post(receiver, gzip.compress(decoded), **{"Content-Encoding": "gzip"})[0] == 200
        assert memory.take(memory.capacity - 100_000, small=True)  # 100 KB are left: not enough for 2 x 90 KB
        status, detail = post(receiver, gzip.compress(decoded), **{"Content-Encoding": "gzip"})
        assert (status, detail) == (503, "the server is busy receiving other data; retry later")
        memory.give(memory.capacity - 100_000)
        assert memory.in_use == 0


def test_an_eighth_of_the_budget_is_kept_for_small_requests() -> None:
    budget = _http.MemoryBudget(800)
    assert not budget.take(701)  # a large request leaves the small share alone
    assert budget.take(700)
    assert not budget.take(1)
    assert budget.take(100, small=True)
    assert not budget.take(1, small=True)
    budget.give(800)
    assert (budget.in_use, budget.peak) == (0, 800)
