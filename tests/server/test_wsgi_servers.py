"""The feedback server's WSGI application, unchanged, under real WSGI servers: gunicorn and the stdlib's wsgiref."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import wsgiref.simple_server
import wsgiref.validate
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

import sentry_feedback
from sentry_feedback import Attachment
from sentry_feedback.server import FeedbackStore, ServerConfig, create_app

TOKEN = "gunicorn-test-token-0123456789"
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class Gunicorn:
    """A gunicorn master with two threaded workers serving ``create_app()`` on a free loopback port."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        executable = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
        if executable is None:
            if os.environ.get("CI") == "true":
                pytest.fail("gunicorn is not installed: it is in the test extra")
            pytest.skip("gunicorn is not installed (pip install -e '.[test]')")
        command = [
            executable,
            "--bind=127.0.0.1:0",
            "--workers=2",
            "--threads=4",
            f"--control-socket={tmp_path / 'gunicorn.ctl'}",
            "sentry_feedback.server:create_app()",
        ]
        self.process = subprocess.Popen(
            command, cwd=tmp_path, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = self._wait_for(LISTENING)
        self._wait_for(re.compile(r"Booting worker"))

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def _wait_for(self, pattern: re.Pattern[str]) -> str:
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=30)
            except queue.Empty:
                raise AssertionError(f"gunicorn did not print {pattern.pattern!r}: {''.join(seen)}") from None
            seen.append(line)
            match = pattern.search(line)
            if match:
                return match.group(1) if match.groups() else line

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    env = {"SENTRY_FEEDBACK_DATABASE": str(tmp_path / "feedback.sqlite3"), "SENTRY_FEEDBACK_TOKEN": TOKEN}
    server = Gunicorn(tmp_path, env)
    try:
        yield server
    finally:
        server.stop()


def api(http: urllib3.PoolManager, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
    return http.request(method, url, headers=headers, **kwargs)


def test_sdk_and_rest_api_under_gunicorn(gunicorn: Gunicorn) -> None:
    http = urllib3.PoolManager()
    client = sentry_feedback.init(dsn=f"http://public@127.0.0.1:{gunicorn.port}/1", release="shop@2")
    try:
        event_id = sentry_feedback.send_feedback(
            "Checkout hangs under gunicorn",
            email="jane@example.com",
            attachments=[Attachment(b"\x89PNG fake", filename="shot.png", content_type="image/png")],
            timeout=10,
        )
    finally:
        client.close(5)
    base = f"{gunicorn.url}/api/0"
    listing = api(http, "GET", f"{base}/organizations/local/user-feedback/?query=release:shop@2")
    assert listing.status == 200, listing.data
    assert listing.headers["X-Hits"] == "1"
    (item,) = json.loads(listing.data)["data"]
    assert (item["id"], item["message"], item["attachment_count"]) == (event_id, "Checkout hangs under gunicorn", 1)

    item_url = f"{base}/projects/local/default/user-feedback/{event_id}/"
    (attachment,) = json.loads(api(http, "GET", item_url + "attachments/").data)["data"]
    download = api(http, "GET", f"{item_url}attachments/{attachment['id']}/")
    assert (download.status, download.data, download.headers["Content-Type"]) == (200, b"\x89PNG fake", "image/png")
    patched = api(http, "PATCH", item_url, body=json.dumps({"data": {"status": "resolved"}}))
    assert (patched.status, json.loads(patched.data)["data"]["status"]) == (202, "resolved")
    assert api(http, "GET", item_url, headers={"Authorization": "Bearer wrong-token"}).status == 401


def test_chunked_create_and_many_clients_under_gunicorn(gunicorn: Gunicorn) -> None:
    http = urllib3.PoolManager(maxsize=8)
    url = f"{gunicorn.url}/api/0/organizations/local/user-feedback/"
    body = json.dumps({"data": {"message": "sent chunked"}}).encode()
    created = api(http, "POST", url, body=iter([body[:10], body[10:]]), chunked=True)
    assert created.status == 201, created.data

    answers: list[int] = []

    def post(index: int) -> None:
        response = api(http, "POST", url, body=json.dumps({"data": {"message": f"client {index}"}}))
        answers.append(response.status)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [201] * 16  # both workers write to one SQLite file (WAL) without errors
    listing = api(http, "GET", url + "?per_page=100")
    assert listing.headers["X-Hits"] == "17"


def test_workers_agree_on_a_generated_token(tmp_path: Path) -> None:
    database = tmp_path / "feedback.sqlite3"
    server = Gunicorn(tmp_path, {"SENTRY_FEEDBACK_DATABASE": str(database)})
    try:
        http = urllib3.PoolManager(maxsize=4)
        url = f"{server.url}/api/0/organizations/local/user-feedback/"
        assert http.request("GET", url).status == 401
        with sqlite3.connect(database) as conn:
            (token,) = conn.execute("SELECT value FROM settings WHERE key = 'api_token'").fetchone()
        statuses = {http.request("GET", url, headers={"Authorization": f"Bearer {token}"}).status for _ in range(20)}
        assert statuses == {200}
    finally:
        server.stop()


def test_the_application_passes_the_wsgi_validator(tmp_path: Path) -> None:
    config = ServerConfig.from_dict({"tokens": [TOKEN]})
    store = FeedbackStore(str(tmp_path / "feedback.sqlite3"))
    app = create_app(str(tmp_path / "feedback.sqlite3"), config)
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, wsgiref.validate.validator(app), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        http = urllib3.PoolManager()
        base = f"http://127.0.0.1:{server.server_port}"
        created = api(http, "POST", f"{base}/api/0/organizations/local/user-feedback/", body=b'{"message": "hi"}')
        assert created.status == 201, created.data
        listing = api(http, "GET", f"{base}/api/0/organizations/local/user-feedback/")
        assert listing.status == 200 and listing.headers["X-Hits"] == "1"
        head = api(http, "HEAD", f"{base}/api/0/organizations/local/user-feedback/")
        assert (head.status, head.data, head.headers["Content-Length"]) == (200, b"", listing.headers["Content-Length"])
        assert http.request("GET", f"{base}/nowhere").status == 404
        envelope = b'{}\n{"type": "feedback"}\n{"contexts": {"feedback": {"message": "from an SDK"}}}\n'
        ingest = http.request("POST", f"{base}/api/1/envelope/?sentry_key=public", body=envelope)
        assert ingest.status == 200, ingest.data
        assert len(store.list_feedback()) == 2
    finally:
        server.shutdown()
        server.server_close()
        app.store.close()
        store.close()


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
