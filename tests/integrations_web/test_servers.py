"""The middlewares inside real servers: gunicorn (WSGI) and uvicorn (ASGI) as subprocesses on 127.0.0.1.

The SDK runs in the server process (``apps.py``) and sends to a LocalReceiver in the test process.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest
import urllib3

from sentry_feedback.server import LocalReceiver, StoredEvent, StoredFeedback

from . import servers

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"


@pytest.fixture(params=["gunicorn", "uvicorn"])
def server(request: pytest.FixtureRequest, sentry_receiver: LocalReceiver) -> Iterator[servers.ServerProcess]:
    start: Callable[[str], servers.ServerProcess] = getattr(servers, request.param)
    process = start(sentry_receiver.dsn)
    try:
        yield process
    finally:
        process.stop()


def _everything(
    http: urllib3.PoolManager, server: servers.ServerProcess, receiver: LocalReceiver
) -> tuple[list[StoredEvent], list[StoredFeedback]]:
    """Let the server's SDK send what it captured, then read the receiver's store."""
    assert http.request("GET", f"{server.url}/flush").data == b"flushed"
    return receiver.store.list_events(), receiver.store.list_feedback()


def test_requests_under_a_real_server(server: servers.ServerProcess, sentry_receiver: LocalReceiver) -> None:
    http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)
    name = server.name
    mechanism = "wsgi" if name == "gunicorn" else "asgi"

    # A feedback in the caller's trace, with the request's data.
    headers = {
        "sentry-trace": f"{TRACE_ID}-{PARENT_SPAN}-1",
        "baggage": f"sentry-trace_id={TRACE_ID},sentry-public_key=upstream",
        "Authorization": "Bearer secret",
        "Cookie": "sessionid=abc",
    }
    answer = http.request("GET", f"{server.url}/feedback?user=jane&page=2", headers=headers)
    assert answer.status == 200
    feedback_id = answer.data.decode()

    # Two requests at once, each waiting until the other has set its user.
    answers: dict[str, int] = {}

    def together(user: str) -> None:
        answers[user] = http.request("GET", f"{server.url}/together?user={user}").status

    threads = [threading.Thread(target=together, args=(user,)) for user in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {"ann": 200, "bob": 200}

    # An unhandled exception: the server answers 500 and logs it; the SDK reports it once.
    assert http.request("GET", f"{server.url}/boom").status == 500
    # An error page around the middleware knows the error's id and trace.
    page = http.request("GET", f"{server.url}/page/boom", headers={"sentry-trace": f"{TRACE_ID}-{PARENT_SPAN}"})
    assert page.status == 500
    match = re.fullmatch(r"last_event_id=([0-9a-f]{32}) trace=([0-9a-f]{32})-[0-9a-f]{16}", page.data.decode())
    assert match is not None, page.data

    events, feedback = _everything(http, server, sentry_receiver)
    log = server.stop()
    assert "ZeroDivisionError" in log  # the server's own error handling still ran

    by_message = {f.message: f for f in feedback}
    jane = by_message["feedback from jane"]
    assert jane.event_id == feedback_id
    assert jane.trace_id == TRACE_ID
    assert jane.user == {"id": "jane", "ip_address": "127.0.0.1"}
    assert jane.tags == {"server": name, "user_tag": "jane"}
    request = jane.data["request"]
    assert request["url"] == f"http://127.0.0.1:{server.port}/feedback"
    assert request["query_string"] == "user=jane&page=2"
    assert request["method"] == "GET"
    headers_sent = {key.lower(): value for key, value in request["headers"].items()}
    assert headers_sent["authorization"] == headers_sent["cookie"] == "[Filtered]"
    assert request["cookies"] == {"sessionid": "[Filtered]"}
    assert jane.data["transaction"] == "/feedback"
    assert {f.user["id"]: f.tags["user_tag"] for f in feedback if f.message.startswith("feedback from ")} == {
        "jane": "jane",
        "ann": "ann",
        "bob": "bob",
    }

    errors = [e for e in events if "exception" in e.data]
    assert sorted(e.data["transaction"] for e in errors) == ["/boom", "/page/boom"]  # once each
    for error in errors:
        (exception,) = error.data["exception"]["values"]
        assert exception["type"] == "ZeroDivisionError"
        assert exception["mechanism"]["type"] == mechanism
        assert exception["mechanism"]["handled"] is False
    (page_error,) = [e for e in errors if e.data["transaction"] == "/page/boom"]
    assert match.groups() == (page_error.event_id, TRACE_ID)
    assert page_error.data["contexts"]["trace"]["trace_id"] == TRACE_ID

    if name == "uvicorn":
        assert "Exception in ASGI application" in log
        (started,) = [e for e in events if e.message == "application started"]
        assert started.data["tags"] == {"server": "uvicorn", "phase": "lifespan"}
        assert all(e.data["tags"].get("phase") is None for e in errors)
    else:
        assert "Error handling request /boom" in log or "Error handling request GET /boom" in log
