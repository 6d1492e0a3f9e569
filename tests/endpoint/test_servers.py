"""The endpoint inside real servers: gunicorn (WSGI) and uvicorn (ASGI) as subprocesses on 127.0.0.1."""

from __future__ import annotations

import html
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from integrations_web import servers
from sentry_feedback.server import LocalReceiver

from .conftest import multipart, tiny_png

HERE = Path(__file__).resolve().parent
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


@pytest.fixture(params=["gunicorn", "uvicorn"])
def server(request: pytest.FixtureRequest, sentry_receiver: LocalReceiver) -> Iterator[servers.ServerProcess]:
    env = {"WEB_TEST_DSN": sentry_receiver.dsn}
    if request.param == "gunicorn":
        process = servers.gunicorn_serving("served_apps:wsgi_application", HERE, env)
    else:
        process = servers.uvicorn_serving("served_apps:asgi_application", HERE, env)
    try:
        yield process
    finally:
        process.stop()


def raw_request(port: int, head: bytes, chunks: list[bytes]) -> tuple[int, bytes]:
    """Send a request by hand (chunks sent as they are); the status and everything the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed before the end: that is the point
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
            if b"\r\n\r\n" in answer and (b"}" in answer.split(b"\r\n\r\n", 1)[1]):
                break
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def test_under_a_real_server(server: servers.ServerProcess, sentry_receiver: LocalReceiver) -> None:
    http = urllib3.PoolManager(maxsize=2, retries=False, timeout=30)

    # The error page, its form, and the feedback posted from it with a screenshot.
    page = http.request("GET", f"{server.url}/checkout")
    assert page.status == 500
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(page.data.decode())}
    png = tiny_png()
    body, content_type = multipart(
        {**fields, "message": f"Checkout fails under {server.name}"},
        [("attachments", "checkout.png", "image/png", png)],
    )
    answer = http.request(
        "POST",
        f"{server.url}/feedback",
        body=body,
        headers={"Content-Type": content_type, "Accept": "application/json", "Origin": server.url},
    )
    assert answer.status == 202, answer.data
    feedback_id = answer.json()["id"]
    assert http.request("GET", f"{server.url}/feedback/form.js").status == 200

    # A body larger than the limit, chunked (no Content-Length): refused while it streams.
    head = (
        b"POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
    )
    chunk = b"2000\r\n" + b"x" * 0x2000 + b"\r\n"
    status, raw = raw_request(server.port, head, [chunk] * 8 + [b"0\r\n\r\n"])
    assert status == 413, raw
    assert b'"error":"body_too_large"' in raw

    # The rate limit (2 a minute per client): the two posts above used it up.
    limited = http.request("POST", f"{server.url}/feedback", json={"message": "one too many"})
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 30

    assert http.request("GET", f"{server.url}/flush").data == b"flushed"
    (feedback,) = sentry_receiver.store.list_feedback()
    (error,) = sentry_receiver.store.list_events()
    assert feedback.event_id == feedback_id
    assert feedback.associated_event_id == error.event_id == fields["associated_event_id"]
    assert feedback.trace_id == error.data["contexts"]["trace"]["trace_id"]
    assert feedback.data["request"]["url"] == f"{server.url}/feedback"
    (stored,) = sentry_receiver.store.list_attachments(feedback.event_id)
    assert (stored.filename, stored.content_type, stored.data) == ("checkout.png", "image/png", png)
    log = server.stop()
    assert "Traceback" not in log
