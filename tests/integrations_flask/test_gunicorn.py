"""FlaskIntegration inside a real gunicorn (threaded worker) on 127.0.0.1, sending to a LocalReceiver here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from integrations_web import servers
from sentry_feedback.server import LocalReceiver

HERE = Path(__file__).resolve().parent


@pytest.fixture
def server(sentry_receiver: LocalReceiver) -> Iterator[servers.ServerProcess]:
    process = servers.gunicorn_serving("flask_app:app", HERE, {"WEB_TEST_DSN": sentry_receiver.dsn})
    try:
        yield process
    finally:
        process.stop()


def test_flask_under_gunicorn(server: servers.ServerProcess, sentry_receiver: LocalReceiver) -> None:
    http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)

    # Two requests at once, each waiting until the other has set its user.
    answers: dict[str, str] = {}

    def together(user: str) -> None:
        answer = http.request("GET", f"{server.url}/together/{user}")
        answers[user] = answer.data.decode() if answer.status == 200 else f"status {answer.status}"

    threads = [threading.Thread(target=together, args=(user,)) for user in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(answers) == {"ann", "bob"}

    page = http.request("GET", f"{server.url}/boom/carol")
    assert page.status == 500
    assert http.request("GET", f"{server.url}/flush").data == b"flushed"

    feedback = {item.message: item for item in sentry_receiver.store.list_feedback()}
    assert set(feedback) == {"feedback from ann", "feedback from bob"}
    for user in ("ann", "bob"):
        item = feedback[f"feedback from {user}"]
        assert item.event_id == answers[user]
        assert item.user == {"id": user, "ip_address": "127.0.0.1"}
        assert item.data["transaction"] == "/together/<user>"
    (event,) = sentry_receiver.store.list_events()
    assert page.data.decode() == f"error {event.event_id}"
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "flask"
    assert event.data["user"] == {"id": "carol", "ip_address": "127.0.0.1"}
    assert event.data["transaction"] == "/boom/<user>"
    assert "flask" in event.data["sdk"]["integrations"]
