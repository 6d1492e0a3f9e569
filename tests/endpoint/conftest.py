"""Fixtures of the feedback endpoint's tests: requests made by hand, a threaded WSGI server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socketserver
import struct
import threading
import wsgiref.util
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import sentry_feedback
from sentry_feedback._web import restore_outer_scopes
from sentry_feedback.endpoint import EndpointResponse, FeedbackEndpoint
from sentry_feedback.server import LocalReceiver, StoredAttachment, StoredFeedback

BOUNDARY = "----feedback-test-boundary-7MA4YWxkTrZu0gW"
ERROR_ID = "32fd1995636d446385016e2747623e11"


@pytest.fixture(autouse=True)
def _outer_scopes_restored() -> Iterator[None]:
    """Put back the scopes a request left active for its error handler, as the next request would."""
    yield
    restore_outer_scopes()


def tiny_png(width: int = 8, height: int = 6) -> bytes:
    """A real PNG (a browser can decode it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((200, 40, 40)) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32


def multipart(
    fields: Sequence[tuple[str, str]] | Mapping[str, str] = (),
    files: Sequence[tuple[str, str, str, bytes]] = (),
    *,
    boundary: str = BOUNDARY,
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body as a browser writes it, and its Content-Type.

    ``files``: ``(field, file name, content type, bytes)``.
    """
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    out = io.BytesIO()
    for name, value in pairs:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode("utf-8") + b"\r\n")
    for field, filename, content_type, data in files:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Answer:
    """What the endpoint answered a direct call."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def environ(
    body: bytes = b"",
    *,
    method: str = "POST",
    path: str = "/feedback",
    content_type: str | None = None,
    length: int | str | None = "auto",
    remote: str = "192.0.2.10",
    **headers: str,
) -> dict[str, Any]:
    """A WSGI environ for a request to the endpoint; ``headers`` like ``HTTP_ORIGIN="..."``."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REMOTE_ADDR": remote,
        "wsgi.input": io.BytesIO(body),
    }
    if content_type is not None:
        env["CONTENT_TYPE"] = content_type
    if length == "auto":
        if body or method == "POST":
            env["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        env["CONTENT_LENGTH"] = str(length)
    env.update(headers)
    wsgiref.util.setup_testing_defaults(env)
    return env


def call(endpoint: Callable[..., Any], env: dict[str, Any]) -> Answer:
    """Run the endpoint (or any WSGI app) for one request, as a server would."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    body = b"".join(endpoint(env, start_response))
    return Answer(int(seen["status"].split()[0]), dict(seen["headers"]), body)


def post_json(endpoint: FeedbackEndpoint, payload: object, **headers: str) -> Answer:
    body = json.dumps(payload).encode()
    return call(endpoint, environ(body, content_type="application/json", **headers))


def post_form(
    endpoint: FeedbackEndpoint,
    fields: Sequence[tuple[str, str]] | Mapping[str, str] = (),
    files: Sequence[tuple[str, str, str, bytes]] = (),
    **headers: str,
) -> Answer:
    body, content_type = multipart(fields, files)
    return call(endpoint, environ(body, content_type=content_type, **headers))


def response_json(response: EndpointResponse) -> Any:
    return json.loads(response.body)


def delivered(receiver: LocalReceiver, count: int = 1) -> list[StoredFeedback]:
    """The feedback the receiver got, once the SDK sent what it queued."""
    assert sentry_feedback.flush(10)
    found = receiver.store.list_feedback()
    assert len(found) == count, found
    return found


def attachments(receiver: LocalReceiver, feedback: StoredFeedback) -> list[StoredAttachment]:
    return sorted(receiver.store.list_attachments(feedback.event_id), key=lambda a: a.filename)


# -- a real HTTP server ---------------------------------------------------------------------------------------------


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Served:
    """A WSGI application served on a free port of 127.0.0.1."""

    url: str
    port: int


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[..., Any]], Served]]:
    """``serve(app)``: the app on 127.0.0.1 in a thread (wsgiref, one thread per request) until the test ends."""
    servers: list[WSGIServer] = []

    def start(app: Callable[..., Any]) -> Served:
        server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return Served(f"http://127.0.0.1:{server.server_port}", server.server_port)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
