"""Hostile envelopes get a 400 with a reason, never a 500, a dropped connection or unbounded work."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
import urllib3

from sentry_feedback.server import LocalReceiver, _receiver

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
    limit = _receiver.MAX_ENVELOPE_ITEMS
    items = b'{"type":"attachment","length":0}\n\n'
    assert post(receiver, b"{}\n" + items * (limit + 1)) == (400, f"envelope has more than {limit} items")


def test_a_small_gzip_body_of_a_million_empty_items_is_refused(receiver: LocalReceiver) -> None:
    bomb = gzip.compress(b"{}\n" + b'{"type":"x","length":0}\n\n' * 1_500_000)
    assert len(bomb) < 200_000
    status, detail = post(receiver, bomb, **{"Content-Encoding": "gzip"})
    assert (status, detail) == (400, f"envelope has more than {_receiver.MAX_ENVELOPE_ITEMS} items")


def test_the_listen_backlog_fits_bursts_of_clients(receiver: LocalReceiver) -> None:
    assert _receiver.LISTEN_BACKLOG >= 128
    assert _receiver._Server.request_queue_size == _receiver.LISTEN_BACKLOG
