"""One HTTP/1.1 exchange written and read directly on a keep-alive connection urllib3 has opened.

urllib3 connects (TCP, TLS with the transport's CA bundle and client certificate) and keeps
the connection; this module sends a prepared request on it and reads the answer. A
general-purpose request costs about 190 µs of CPU in urllib3 (URL and header handling,
``http.client``'s response machinery), two thirds of the background thread's work per
envelope; the exchange here costs a few tens, and holds the interpreter lock for less time
in one stretch, which is what the application's threads wait for.

Only what the envelope endpoint needs: a ``POST`` with a body of known length, and an
answer framed by ``Content-Length``, chunked, or the end of the connection; informational
(1xx) answers are skipped. An answer this cannot read is a ``ConnectionError``: the
connection is closed and the dispatcher treats it as a network failure.
"""

from __future__ import annotations

__all__: list[str] = []

#: The most answer bytes kept; the rest of a longer body is not read (the connection is closed).
MAX_ANSWER = 64 * 1024
#: The most bytes a status line and headers may take.
MAX_HEAD = 64 * 1024
_RECV = 64 * 1024


class Answer:
    """The server's answer: status, headers (as sent), body, and whether the connection can be reused."""

    __slots__ = ("body", "headers", "reusable", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, reusable: bool) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.reusable = reusable


class _Reader:
    """Buffered reads from a socket; ``ConnectionError`` at an early end."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: object) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data: bytes = self.sock.recv(_RECV)  # type: ignore[attr-defined]
        if not data:
            return False
        self.buffer += data
        return True

    def until(self, marker: bytes, limit: int, what: str) -> bytes:
        """The bytes up to ``marker`` (consumed, not returned)."""
        start = 0
        while True:
            end = self.buffer.find(marker, start)
            if end != -1:
                data = bytes(self.buffer[:end])
                del self.buffer[: end + len(marker)]
                return data
            if len(self.buffer) > limit:
                raise ConnectionError(f"the server's {what} is too long")
            start = max(len(self.buffer) - len(marker) + 1, 0)
            if not self._fill():
                raise ConnectionError(f"the connection closed before the end of the server's {what}")

    def exactly(self, size: int) -> bytes:
        """The next ``size`` bytes."""
        while len(self.buffer) < size:
            if not self._fill():
                raise ConnectionError("the connection closed in the middle of the server's answer")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def to_end(self, limit: int) -> tuple[bytes, bool]:
        """Everything until the connection ends, at most ``limit`` bytes; whether it ended within it."""
        while len(self.buffer) <= limit:
            if not self._fill():
                return bytes(self.buffer), True
        return bytes(self.buffer[:limit]), False


def exchange(sock: object, request: bytes) -> Answer:
    """Send ``request`` (head and body) on ``sock`` and read the answer."""
    sock.sendall(request)  # type: ignore[attr-defined]
    reader = _Reader(sock)
    while True:
        status, version, headers, lowered = _read_head(reader)
        if not 100 <= status < 200:
            break
    reusable = version == "HTTP/1.1" and "close" not in lowered.get("connection", "").lower()
    if status in (204, 304):
        body = b""
    elif "chunked" in lowered.get("transfer-encoding", "").lower():
        body, whole = _read_chunked(reader)
        reusable = reusable and whole
    elif "content-length" in lowered:
        text = lowered["content-length"].strip()
        if not text.isdigit() or len(text) > 18:
            raise ConnectionError(f"the server's answer has an invalid Content-Length {text[:40]!r}")
        length = int(text)
        if length > MAX_ANSWER:
            body, _ = reader.to_end(MAX_ANSWER)  # enough for messages; the rest is not read
            reusable = False
        else:
            body = reader.exactly(length)
    else:
        body, _ = reader.to_end(MAX_ANSWER)
        reusable = False
    return Answer(status, headers, body, reusable and not reader.buffer)


def _read_head(reader: _Reader) -> tuple[int, str, dict[str, str], dict[str, str]]:
    head = reader.until(b"\r\n\r\n", MAX_HEAD, "answer head")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " "):
        raise ConnectionError(f"the server's answer is not HTTP: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ConnectionError(f"the server's answer has a malformed header line {line[:80]!r}")
        value = value.strip()
        key = name.lower()
        if key in lowered:  # repeated: joined as one list, as HTTP allows
            value = f"{lowered[key]}, {value}"
            headers = {k: v for k, v in headers.items() if k.lower() != key}
        headers[name] = value
        lowered[key] = value
    return int(code), version, headers, lowered


def _read_chunked(reader: _Reader) -> tuple[bytes, bool]:
    """The body of a chunked answer (the first :data:`MAX_ANSWER` bytes); whether it was read whole."""
    body = bytearray()
    while True:
        line = reader.until(b"\r\n", 1024, "chunk size")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ConnectionError(f"the server's answer has a bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            while reader.until(b"\r\n", MAX_HEAD, "trailer"):
                pass
            return bytes(body), True
        if len(body) + size > MAX_ANSWER:
            return bytes(body), False
        body += reader.exactly(size)
        if reader.exactly(2) != b"\r\n":
            raise ConnectionError("the server's answer has a chunk longer than its size")
