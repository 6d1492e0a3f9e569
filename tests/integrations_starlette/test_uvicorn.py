"""FastApiIntegration inside a real uvicorn on 127.0.0.1, sending to a LocalReceiver here."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from integrations_web import servers
from sentry_feedback.server import LocalReceiver

pytest.importorskip("fastapi")

HERE = Path(__file__).resolve().parent


@pytest.fixture
def server(sentry_receiver: LocalReceiver) -> Iterator[servers.ServerProcess]:
    process = servers.uvicorn_serving("uvicorn_app:app", HERE, {"WEB_TEST_DSN": sentry_receiver.dsn})
    try:
        yield process
    finally:
        process.stop()


def test_fastapi_under_uvicorn(server: servers.ServerProcess, sentry_receiver: LocalReceiver) -> None:
    http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)

    # Two requests at once, each waiting until the other has set its user, then failing.
    answers: dict[str, tuple[int, str]] = {}

    def together(user: str) -> None:
        # uvicorn closes a connection whose request raised: none of these is reused.
        answer = http.request("GET", f"{server.url}/together", headers={"X-User": user, "Connection": "close"})
        answers[user] = answer.status, answer.data.decode()

    threads = [threading.Thread(target=together, args=(user,)) for user in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(answers) == {"ann", "bob"}
    assert http.request("GET", f"{server.url}/flush").data == b'"flushed"'

    feedback = {item.message: item for item in sentry_receiver.store.list_feedback()}
    assert set(feedback) == {"feedback from ann", "feedback from bob"}
    events = {event.data["user"]["id"]: event for event in sentry_receiver.store.list_events()}
    assert set(events) == {"ann", "bob"}  # one event per error: no second one from uvicorn's log record
    for user in ("ann", "bob"):
        item, event = feedback[f"feedback from {user}"], events[user]
        assert item.user == event.data["user"] == {"id": user, "ip_address": "127.0.0.1"}
        assert answers[user] == (500, f"error {event.event_id}")
        assert event.message == f"ZeroDivisionError: boom for {user}"
        assert event.data["exception"]["values"][-1]["mechanism"]["type"] == "starlette"
        assert event.data["transaction"] == item.data["transaction"] == "/together"
        assert event.data["request"]["headers"]["X-User"] == user
        assert item.trace_id == event.data["contexts"]["trace"]["trace_id"]
    assert feedback["feedback from ann"].trace_id != feedback["feedback from bob"].trace_id

    # uvicorn still prints the traceback of each 500, down to the endpoint's frame.
    for user in ("ann", "bob"):
        server.wait_for(re.compile(rf"^ZeroDivisionError: boom for {user}$", re.M))
    log = server.stop()
    assert log.count("Exception in ASGI application") == 2
    assert re.search(r'File ".*uvicorn_app\.py", line \d+, in together', log)
