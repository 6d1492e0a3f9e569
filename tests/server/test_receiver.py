"""LocalReceiver over real sockets on 127.0.0.1, driven with urllib3."""

from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from sentry_feedback._attachment import Attachment
from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.server import FeedbackStore, LocalReceiver

EVENT_ID = "0123456789abcdef0123456789abcdef"
AUTH = "Sentry sentry_version=7, sentry_key=public, sentry_client=sentry-feedback/0.1.0"
BINARY = bytes(range(256)) + b"line one\nline two\r\n\x00\xff"


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as r:
        yield r


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(retries=False, timeout=5.0)
    yield pool
    pool.clear()


def feedback_payload(message: str = "The button does nothing") -> dict[str, Any]:
    return {
        "event_id": "f" * 32,
        "timestamp": 1_700_000_000.25,
        "platform": "python",
        "environment": "staging",
        "release": "shop@2.0.0",
        "tags": {"page": "checkout"},
        "user": {"id": "42"},
        "contexts": {
            "feedback": {
                "message": message,
                "contact_email": "jane@example.com",
                "name": "Jane Doe",
                "url": "https://shop.example/checkout",
                "source": "widget",
                "associated_event_id": "e" * 32,
            },
            "trace": {"trace_id": "1" * 32, "span_id": "2" * 16},
        },
    }


def feedback_envelope(message: str = "The button does nothing", event_id: str = EVENT_ID) -> bytes:
    envelope = Envelope(
        {"event_id": event_id, "sent_at": "2024-01-01T00:00:00Z"},
        [
            EnvelopeItem.from_json("feedback", feedback_payload(message)),
            EnvelopeItem.from_attachment(Attachment(BINARY, filename="screenshot.png")),
            EnvelopeItem.from_attachment(Attachment(b"first\nsecond\n", filename="app.log")),
        ],
    )
    return envelope.serialize()


def post(
    http: urllib3.PoolManager,
    receiver: LocalReceiver,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    path: str | None = None,
) -> urllib3.BaseHTTPResponse:
    all_headers = {"X-Sentry-Auth": AUTH, "Content-Type": "application/x-sentry-envelope", **(headers or {})}
    url = receiver.url + (path if path is not None else f"/api/{receiver.project_id}/envelope/")
    return http.request("POST", url, body=body, headers=all_headers)


def detail(response: urllib3.BaseHTTPResponse) -> str:
    value = json.loads(response.data)["detail"]
    assert isinstance(value, str)
    return value


def test_feedback_with_attachments_is_stored(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    body = feedback_envelope()
    response = post(http, receiver, body)

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.data) == {"id": EVENT_ID}

    feedback = receiver.store.get_feedback(EVENT_ID)
    assert feedback is not None
    assert feedback.event_id == EVENT_ID  # the envelope header wins over the payload's event_id
    assert feedback.project_id == "1"
    assert feedback.message == "The button does nothing"
    assert feedback.contact_email == "jane@example.com"
    assert feedback.name == "Jane Doe"
    assert feedback.url == "https://shop.example/checkout"
    assert feedback.source == "widget"
    assert feedback.associated_event_id == "e" * 32
    assert (feedback.environment, feedback.release, feedback.platform) == ("staging", "shop@2.0.0", "python")
    assert feedback.tags == {"page": "checkout"}
    assert feedback.user == {"id": "42"}
    assert feedback.trace_id == "1" * 32
    assert feedback.timestamp == 1_700_000_000.25
    assert feedback.status == "unresolved"

    screenshot, log = receiver.store.list_attachments(EVENT_ID)
    assert (screenshot.filename, screenshot.content_type, screenshot.data) == (
        "screenshot.png",
        "image/png",
        BINARY,
    )
    assert (log.filename, log.content_type, log.data) == ("app.log", "text/plain", b"first\nsecond\n")

    [envelope] = receiver.store.list_envelopes()
    assert envelope.item_types == ("feedback", "attachment", "attachment")
    assert envelope.size == len(body)

    [request] = receiver.received
    assert (request.method, request.path, request.status, request.body) == (
        "POST",
        "/api/1/envelope/",
        200,
        body,
    )
    assert request.headers["x-sentry-auth"] == AUTH
    assert request.project_id == "1"
    assert request.envelope is not None
    assert request.envelope.event_id == EVENT_ID


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some clients send
    ],
)
def test_compressed_bodies(receiver: LocalReceiver, http: urllib3.PoolManager, encoding: str, compress: Any) -> None:
    body = feedback_envelope()
    response = post(http, receiver, compress(body), headers={"Content-Encoding": encoding})
    assert response.status == 200, response.data
    assert receiver.received[0].body == body
    assert receiver.store.list_attachments(EVENT_ID)[1].data == b"first\nsecond\n"


def test_chunked_body(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    body = gzip.compress(feedback_envelope())
    chunks = [body[i : i + 100] for i in range(0, len(body), 100)]
    response = http.request(
        "POST",
        receiver.envelope_url,
        body=iter(chunks),
        headers={"X-Sentry-Auth": AUTH, "Content-Encoding": "gzip"},
        chunked=True,
    )
    assert response.status == 200, response.data
    assert receiver.store.get_feedback(EVENT_ID) is not None


@pytest.mark.parametrize(
    ("encoding", "body", "reason"),
    [
        ("gzip", b"this is not gzip", "invalid gzip body"),
        ("gzip", gzip.compress(b"{}\n")[:-10], "invalid gzip body"),
        ("br", b"{}\n", "unsupported Content-Encoding 'br'"),
    ],
)
def test_bad_encodings_answer_400(
    receiver: LocalReceiver, http: urllib3.PoolManager, encoding: str, body: bytes, reason: str
) -> None:
    response = post(http, receiver, body, headers={"Content-Encoding": encoding})
    assert response.status == 400
    assert reason in detail(response)
    assert receiver.store.count_envelopes() == 0


@pytest.mark.parametrize(
    ("headers", "query", "reason"),
    [
        ({"X-Sentry-Auth": ""}, "", "missing authorization"),
        ({"X-Sentry-Auth": AUTH.replace("=public", "=nope")}, "", "invalid sentry_key 'nope'"),
        ({"X-Sentry-Auth": "Sentry sentry_version=7"}, "", "X-Sentry-Auth header has no sentry_key"),
        ({"X-Sentry-Auth": ""}, "?sentry_key=wrong&sentry_version=7", "invalid sentry_key 'wrong'"),
    ],
)
def test_bad_auth_answers_401(
    receiver: LocalReceiver, http: urllib3.PoolManager, headers: dict[str, str], query: str, reason: str
) -> None:
    response = post(http, receiver, feedback_envelope(), headers=headers, path=f"/api/1/envelope/{query}")
    assert response.status == 401
    assert reason in detail(response)
    assert receiver.store.count_envelopes() == 0
    assert [r.status for r in receiver.received] == [401]


def test_sentry_key_query_parameter(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    path = "/api/1/envelope/?sentry_key=public&sentry_version=7"
    response = post(http, receiver, feedback_envelope(), headers={"X-Sentry-Auth": ""}, path=path)
    assert response.status == 200
    assert receiver.received[0].path == path


def test_wrong_project_and_other_paths_answer_404(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    response = post(http, receiver, feedback_envelope(), path="/api/2/envelope/")
    assert response.status == 404
    assert detail(response) == "unknown project '2'"

    response = post(http, receiver, feedback_envelope(), path="/api/1/store/")
    assert response.status == 404
    response = http.request("GET", receiver.url + "/nowhere")
    assert response.status == 404
    response = http.request("GET", receiver.envelope_url)
    assert (response.status, response.headers["Allow"]) == (405, "POST, OPTIONS")

    assert [r.status for r in receiver.received] == [404]  # only envelope requests are recorded
    assert receiver.store.count_envelopes() == 0


def _two_feedback_items() -> bytes:
    items = [EnvelopeItem.from_json("feedback", feedback_payload(m)) for m in ("one", "two")]
    return Envelope({"event_id": EVENT_ID}, items).serialize()


def _feedback_and_transaction() -> bytes:
    items = [
        EnvelopeItem.from_json("feedback", feedback_payload()),
        EnvelopeItem.from_json("transaction", {"type": "transaction"}),
    ]
    return Envelope({"event_id": EVENT_ID}, items).serialize()


@pytest.mark.parametrize(
    ("body", "reason", "parsed"),
    [
        pytest.param(
            b'{"event_id": \n{"type":"feedback"}\n{}\n',
            "envelope header is not valid JSON",
            False,
            id="header",
        ),
        pytest.param(
            b'{}\n{"type":"attachment","length":100,"filename":"a.txt"}\nshort\n',
            "attachment item is truncated: length 100",
            False,
            id="truncated",
        ),
        pytest.param(b'{}\n{"length":2}\n{}\n', "has no string 'type'", False, id="missing-type"),
        pytest.param(_two_feedback_items(), "envelope has 2 feedback items", True, id="two-feedback"),
        pytest.param(_feedback_and_transaction(), "feedback item together with a transaction", True, id="transaction"),
        pytest.param(
            b'{}\n{"type":"feedback"}\n{"contexts":{}}\n',
            "feedback item has no contexts.feedback",
            True,
            id="payload",
        ),
    ],
)
def test_malformed_envelopes_answer_400(
    receiver: LocalReceiver, http: urllib3.PoolManager, body: bytes, reason: str, parsed: bool
) -> None:
    response = post(http, receiver, body)
    assert response.status == 400
    assert reason in detail(response)
    assert receiver.store.count_envelopes() == 0
    [request] = receiver.received
    assert request.status == 400
    assert (request.envelope is not None) == parsed


def test_client_report_totals(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    def report(*entries: tuple[str, str, int]) -> bytes:
        payload = {
            "timestamp": 1_700_000_000,
            "discarded_events": [{"reason": r, "category": c, "quantity": q} for r, c, q in entries],
        }
        return Envelope({}, [EnvelopeItem.from_json("client_report", payload)]).serialize()

    assert (
        post(http, receiver, report(("ratelimit_backoff", "feedback", 2), ("network_error", "attachment", 512))).status
        == 200
    )
    response = post(http, receiver, report(("ratelimit_backoff", "feedback", 3)))
    assert json.loads(response.data) == {"id": None}
    assert receiver.store.client_report_totals() == {
        ("ratelimit_backoff", "feedback"): 5,
        ("network_error", "attachment"): 512,
    }


def test_canned_responses_then_normal_again(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    limits = "60:feedback;error:key, 2700::organization"
    receiver.respond_with(429, headers={"Retry-After": "60", "X-Sentry-Rate-Limits": limits})
    receiver.respond_with(500, body=b"internal error")

    first = post(http, receiver, feedback_envelope("first", "1" * 32))
    assert first.status == 429
    assert (first.headers["Retry-After"], first.headers["X-Sentry-Rate-Limits"]) == ("60", limits)
    second = post(http, receiver, feedback_envelope("second", "2" * 32))
    assert (second.status, second.data) == (500, b"internal error")
    third = post(http, receiver, feedback_envelope("third", "3" * 32))
    assert third.status == 200

    assert [f.message for f in receiver.store.list_feedback()] == ["third"]
    assert receiver.store.list_attachments("1" * 32) == []
    assert [r.status for r in receiver.received] == [429, 500, 200]
    first_envelope = receiver.received[0].envelope
    assert first_envelope is not None  # still parsed, for inspection
    assert first_envelope.event_id == "1" * 32


def test_canned_2xx_stores_and_sends_headers(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "60:feedback:key"})
    response = post(http, receiver, feedback_envelope())
    assert response.status == 200
    assert response.headers["X-Sentry-Rate-Limits"] == "60:feedback:key"
    assert json.loads(response.data) == {"id": EVENT_ID}
    assert receiver.store.get_feedback(EVENT_ID) is not None


def test_canned_until_reset(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    receiver.respond_with(503, times=None)
    assert [post(http, receiver, feedback_envelope()).status for _ in range(3)] == [503, 503, 503]
    receiver.reset_responses()
    assert post(http, receiver, feedback_envelope()).status == 200
    assert receiver.store.count_envelopes() == 1


def test_canned_answer_is_not_used_by_rejected_auth(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    receiver.respond_with(429)
    assert post(http, receiver, feedback_envelope(), headers={"X-Sentry-Auth": ""}).status == 401
    assert post(http, receiver, feedback_envelope()).status == 429


def test_keep_alive_reuses_one_connection(receiver: LocalReceiver) -> None:
    pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=5.0)
    try:
        statuses = [post(pool, receiver, feedback_envelope(str(i), f"{i:032x}")).status for i in range(5)]
        statuses.append(post(pool, receiver, b"not an envelope").status)
        statuses.append(post(pool, receiver, feedback_envelope(), path="/elsewhere").status)
        statuses.append(post(pool, receiver, feedback_envelope("6", f"{6:032x}")).status)
    finally:
        pool.clear()
    assert statuses == [200] * 5 + [400, 404, 200]
    assert receiver.connections_opened == 1
    assert len(receiver.store.list_feedback()) == 6


def test_wait_for_envelopes(receiver: LocalReceiver, http: urllib3.PoolManager) -> None:
    assert receiver.wait_for_envelopes(1, timeout=0.01) is False

    def send() -> None:
        for i in range(3):
            post(http, receiver, feedback_envelope(str(i), f"{i:032x}"))

    thread = threading.Thread(target=send)
    thread.start()
    assert receiver.wait_for_envelopes(3)
    thread.join()
    assert receiver.store.count_envelopes() == 3
    assert receiver.wait_for_envelopes(0, timeout=0)


def test_body_size_limit(http: urllib3.PoolManager) -> None:
    with LocalReceiver(max_body_size=2000) as receiver:
        too_big = post(http, receiver, b"{}\n" + b"x" * 3000)
        assert too_big.status == 413
        assert too_big.headers["Connection"] == "close"
        bomb = gzip.compress(b"{}\n" + b"\0" * 1_000_000)
        assert len(bomb) < 2000
        response = post(http, receiver, bomb, headers={"Content-Encoding": "gzip"})
        assert response.status == 413
        assert "decoded body is larger than 2000 bytes" in detail(response)
        assert post(http, receiver, b"{}\n").status == 200
        assert [r.status for r in receiver.received] == [413, 413, 200]


def test_no_output_on_stderr(
    receiver: LocalReceiver, http: urllib3.PoolManager, capfd: pytest.CaptureFixture[str]
) -> None:
    post(http, receiver, feedback_envelope())
    post(http, receiver, b"garbage")
    post(http, receiver, b"{}\n", path="/nope")
    http.request("BREW", receiver.url + "/pot")
    assert capfd.readouterr().err == ""


def test_addresses_and_lifecycle(http: urllib3.PoolManager) -> None:
    receiver = LocalReceiver(public_key="abc123", project_id="42")
    with pytest.raises(RuntimeError, match="start"):
        _ = receiver.port
    with pytest.raises(RuntimeError, match="start"):
        _ = receiver.store
    with receiver:
        assert receiver.host == "127.0.0.1"
        assert receiver.url == f"http://127.0.0.1:{receiver.port}"
        assert receiver.dsn == f"http://abc123@127.0.0.1:{receiver.port}/42"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/42/envelope/", receiver.envelope_url)
        with pytest.raises(RuntimeError, match="already started"):
            receiver.start()
        auth = AUTH.replace("=public", "=abc123")
        assert post(http, receiver, feedback_envelope(), headers={"X-Sentry-Auth": auth}).status == 200
        store = receiver.store
    receiver.stop()  # idempotent
    with pytest.raises(RuntimeError, match="cannot be started again"):
        receiver.start()
    with pytest.raises(Exception, match="closed"):
        store.count_envelopes()
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.request("POST", receiver.envelope_url, body=b"{}\n", headers={"X-Sentry-Auth": auth})


def test_file_database_persists_across_receivers(tmp_path: Path, http: urllib3.PoolManager) -> None:
    database = str(tmp_path / "receiver.sqlite3")
    with LocalReceiver(database=database) as receiver:
        assert post(http, receiver, feedback_envelope()).status == 200
    with FeedbackStore(database) as store:
        feedback = store.get_feedback(EVENT_ID)
        assert feedback is not None
        assert feedback.message == "The button does nothing"
        assert store.list_attachments(EVENT_ID)[0].data == BINARY
