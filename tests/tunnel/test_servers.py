"""The tunnel deployed: under gunicorn (WSGI, threaded workers) and uvicorn (ASGI) in their own processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations_web.servers import GUNICORN_LISTENING, UVICORN_LISTENING, ServerProcess, _executable
from sentry_feedback.server import LocalReceiver

from .envelopes import BINARY, error_envelope, feedback_envelope
from .servers import CountingServer, post

HERE = Path(__file__).resolve().parent
MAX_BODY_SIZE = 50_000


def start(kind: str, dsn: str) -> ServerProcess:
    env = {"TUNNEL_TEST_ALLOWED": dsn, "TUNNEL_TEST_MAX_BODY_SIZE": str(MAX_BODY_SIZE)}
    if kind == "gunicorn":
        arguments = [
            _executable("gunicorn"),
            "--bind=127.0.0.1:0",
            "--workers=1",
            "--threads=4",
            "--worker-class=gthread",
            "--no-control-socket",
            f"--chdir={HERE}",
            "--log-level=info",
            "app:wsgi_application",
        ]
        return ServerProcess("gunicorn", arguments, GUNICORN_LISTENING, env)
    arguments = [
        _executable("uvicorn"),
        "--host=127.0.0.1",
        "--port=0",
        "--lifespan=on",
        "--no-proxy-headers",
        f"--app-dir={HERE}",
        "--log-level=info",
        "app:asgi_application",
    ]
    return ServerProcess("uvicorn", arguments, UVICORN_LISTENING, env)


@pytest.fixture(scope="module")
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as server:
        yield server


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def tunnel_url(request: pytest.FixtureRequest, receiver: LocalReceiver) -> Iterator[str]:
    server = start(request.param, receiver.dsn)
    try:
        yield f"{server.url}/tunnel"
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


def test_envelopes_arrive_whole_with_and_without_a_length(tunnel_url: str, receiver: LocalReceiver) -> None:
    message = f"Sent through {tunnel_url}"
    feedback = feedback_envelope(receiver.dsn, message)
    error = error_envelope(receiver.dsn)

    assert post(tunnel_url, feedback, {"X-Forwarded-For": "6.6.6.6"}).status == 200
    assert post(tunnel_url, error, chunked=True, piece=100).status == 200

    assert [r.body for r in receiver.received[-2:]] == [feedback, error]
    assert receiver.received[-2].headers["X-Forwarded-For"] == "127.0.0.1"
    [stored] = [f for f in receiver.store.list_feedback() if f.message == message]
    [attachment] = receiver.store.list_attachments(stored.event_id)
    assert attachment.data == BINARY


def test_a_foreign_dsn_is_refused_without_contacting_it(tunnel_url: str, receiver: LocalReceiver) -> None:
    counting = CountingServer()
    try:
        response = post(tunnel_url, feedback_envelope(counting.dsn()))
        assert response.status == 403
        assert counting.connections == 0
    finally:
        counting.close()


def test_a_streamed_body_past_the_limit_is_cut_off(tunnel_url: str, receiver: LocalReceiver) -> None:
    before = len(receiver.store.list_feedback())
    body = feedback_envelope(receiver.dsn, "Too large", attachment=b"z" * (MAX_BODY_SIZE * 2))

    response = post(tunnel_url, body, chunked=True, piece=4096)

    assert response.status == 413
    assert json.loads(response.data) == {"detail": f"the body is larger than {MAX_BODY_SIZE} bytes"}
    assert len(receiver.store.list_feedback()) == before


def test_rate_limits_come_back(tunnel_url: str, receiver: LocalReceiver) -> None:
    receiver.respond_with(429, headers={"X-Sentry-Rate-Limits": "60:feedback:project", "Retry-After": "60"})
    response = post(tunnel_url, feedback_envelope(receiver.dsn))
    assert response.status == 429
    assert response.headers["X-Sentry-Rate-Limits"] == "60:feedback:project"
    assert response.headers["Retry-After"] == "60"
