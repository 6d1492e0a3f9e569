"""The tunnel's public names, its configuration, and its pieces without a server."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import subprocess
import sys
import zlib
from typing import Any

import pytest

import sentry_feedback.tunnel
from sentry_feedback import Dsn
from sentry_feedback.server import LocalReceiver
from sentry_feedback.tunnel import AsgiTunnel, Tunnel, TunnelOptions, TunnelResponse
from sentry_feedback.tunnel._header import HeaderReader, InvalidBody

from .envelopes import error_envelope


def test_public_names() -> None:
    assert sorted(sentry_feedback.tunnel.__all__) == [
        "AsgiTunnel",
        "BodyReader",
        "DEFAULT_MAX_BODY_SIZE",
        "DEFAULT_MAX_HEADER_SIZE",
        "DEFAULT_TIMEOUT",
        "Tunnel",
        "TunnelOptions",
        "TunnelResponse",
    ]
    for name in sentry_feedback.tunnel.__all__:
        value = getattr(sentry_feedback.tunnel, name)
        assert isinstance(value, int | float) or value.__doc__, name


def test_importing_the_sdk_does_not_import_the_tunnel() -> None:
    code = "import sys, sentry_feedback; print([m for m in sys.modules if m.startswith('sentry_feedback.tunnel')])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_options_are_validated() -> None:
    tunnel = Tunnel("https://abc@o1.ingest.sentry.io/42", cors_origins="https://App.example.com/")
    assert tunnel.options.allowed == (Dsn.parse("https://abc@o1.ingest.sentry.io/42"),)
    assert tunnel.options.cors_origins == ("https://app.example.com",)
    assert isinstance(tunnel.options, TunnelOptions)
    with pytest.raises(ValueError, match="at least one allowed DSN"):
        Tunnel([])
    with pytest.raises(ValueError, match="missing project id"):
        Tunnel(["https://key@o1.ingest.sentry.io/"])
    with pytest.raises(ValueError, match="max_body_size"):
        Tunnel("https://k@h/1", max_body_size=0)
    with pytest.raises(ValueError, match="timeout"):
        Tunnel("https://k@h/1", timeout=0)
    with pytest.raises(ValueError, match="cors_origins"):
        Tunnel("https://k@h/1", cors_origins=["https://app.example.com/path"])
    with pytest.raises(ValueError, match="http_proxy"):
        Tunnel("https://k@h/1", http_proxy="socks5://proxy:1080")
    with pytest.raises(ValueError, match="public key"):
        Tunnel(["https://a%20b@h/1"])
    with pytest.raises(ValueError, match="threads"):
        AsgiTunnel(tunnel, threads=0)


def test_response_status_line() -> None:
    assert TunnelResponse(429).status_line == "429 Too Many Requests"
    assert TunnelResponse(299).status_line == "299 Unknown"


def test_forward_serves_any_framework_request(receiver: LocalReceiver) -> None:
    tunnel = Tunnel(allowed=[receiver.dsn])
    body = error_envelope(receiver.dsn)
    # Headers as a list of pairs (Werkzeug's EnvironHeaders iterate so), in any case.
    headers = [("content-type", "text/plain;charset=UTF-8"), ("CONTENT-LENGTH", str(len(body)))]
    response = tunnel.forward("POST", headers, io.BytesIO(body + b"trailing bytes past the length"))
    tunnel.close()
    assert response.status == 200
    assert receiver.received[0].body == body
    assert "X-Forwarded-For" not in receiver.received[0].headers  # no client address given


def test_forward_never_raises() -> None:
    class Broken:
        def read(self, size: int) -> bytes:
            raise RuntimeError("the stream broke")

    tunnel = Tunnel(allowed=["http://public@127.0.0.1:9/1"])
    response = tunnel.forward("POST", {}, Broken())
    assert response.status == 400
    assert json.loads(response.body) == {"detail": "could not read the request body: RuntimeError"}


def test_the_asgi_app_refuses_websockets_and_follows_the_lifespan() -> None:
    app = Tunnel(allowed=["http://public@127.0.0.1:9/1"]).asgi
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def run() -> None:
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> Any:
            return next(messages)

        await app({"type": "lifespan"}, receive, send)
        await app({"type": "websocket"}, receive, send)

    asyncio.run(run())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete", "websocket.close"]


# -- the header reader -----------------------------------------------------------------------------------------


def feed_all(reader: HeaderReader, body: bytes, piece: int) -> bytes:
    for start in range(0, len(body), piece):
        if reader.feed(body[start : start + piece]):
            assert reader.line is not None
            return reader.line
    return reader.finish()


@pytest.mark.parametrize("piece", [1, 2, 7, 1000])
@pytest.mark.parametrize("encoding", ["", "gzip", "deflate", "raw-deflate"])
def test_the_header_line_is_found_in_any_pieces(encoding: str, piece: int) -> None:
    body = b'{"dsn": "x"}\n{"type": "event"}\n' + bytes(range(256)) * 50
    if encoding == "gzip":
        sent = gzip.compress(body)
    elif encoding == "deflate":
        sent = zlib.compress(body)
    elif encoding == "raw-deflate":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        sent, encoding = compressor.compress(body) + compressor.flush(), "deflate"
    else:
        sent = body
    reader = HeaderReader(encoding, 100)
    assert feed_all(reader, sent, piece) == b'{"dsn": "x"}'
    assert sent.startswith(reader.prefix)


def test_a_body_without_newline_is_all_header() -> None:
    reader = HeaderReader("", 100)
    assert feed_all(reader, b'{"dsn": "x"}', 3) == b'{"dsn": "x"}'
    reader = HeaderReader("gzip", 100)
    assert feed_all(reader, gzip.compress(b'{"dsn": "x"}'), 3) == b'{"dsn": "x"}'


def test_the_header_limit_holds_for_compressed_bodies() -> None:
    reader = HeaderReader("gzip", 100)
    with pytest.raises(InvalidBody, match="longer than 100 bytes"):
        feed_all(reader, gzip.compress(b"a" * 10_000 + b"\n"), 10_000)
    reader = HeaderReader("", 100)
    with pytest.raises(InvalidBody, match="longer than 100 bytes"):
        feed_all(reader, b"a" * 101 + b"\n", 50)
    assert HeaderReader("", 100).feed(b"a" * 100 + b"\n")  # exactly the limit is fine
