"""DjangoIntegration inside a real gunicorn (threaded worker) on 127.0.0.1, sending to a LocalReceiver here."""

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
    process = servers.gunicorn_serving("django_app:application", HERE, {"WEB_TEST_DSN": sentry_receiver.dsn})
    try:
        yield process
    finally:
        process.stop()


def test_concurrent_requests_under_gunicorn_keep_their_users(
    server: servers.ServerProcess, sentry_receiver: LocalReceiver
) -> None:
    http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)

    # Two requests at once, each waiting until the other has set its user, then failing.
    pages: dict[str, tuple[int, str]] = {}

    def together(user: str) -> None:
        answer = http.request("GET", f"{server.url}/together/{user}?from={user}")
        pages[user] = (answer.status, answer.data.decode())

    threads = [threading.Thread(target=together, args=(user,)) for user in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert http.request("GET", f"{server.url}/flush").data == b"flushed"

    errors = {event.data["user"]["id"]: event for event in sentry_receiver.store.list_events()}
    feedback = {item.message: item for item in sentry_receiver.store.list_feedback()}
    assert set(errors) == {"ann", "bob"}
    assert set(feedback) == {"feedback from ann", "feedback from bob"}
    for user in ("ann", "bob"):
        error = errors[user]
        assert pages[user] == (500, f"error {error.event_id}")  # handler500 saw this request's error
        assert error.message == f"ZeroDivisionError: boom for {user}"
        assert error.data["user"] == {"id": user, "ip_address": "127.0.0.1"}
        assert error.data["exception"]["values"][0]["mechanism"]["type"] == "django"
        assert error.data["transaction"] == "/together/<str:user>"
        assert error.data["request"]["query_string"] == f"from={user}"
        assert "django" in error.data["sdk"]["integrations"]
        item = feedback[f"feedback from {user}"]
        assert item.user == {"id": user, "ip_address": "127.0.0.1"}
        assert item.data["request"]["query_string"] == f"from={user}"
        assert item.trace_id == error.data["contexts"]["trace"]["trace_id"]  # one trace per request
    assert errors["ann"].data["contexts"]["trace"]["trace_id"] != errors["bob"].data["contexts"]["trace"]["trace_id"]
