"""A minimal HTTP sink for the benchmarks: answers every POST with 200 and forgets the body.

Run: ``python benchmarks/_sink.py`` (standard library only). It listens on 127.0.0.1, on a
free port, and prints ``PORT <n>`` once it accepts connections. Each connection gets its
own thread and is kept alive for as long as the client wants (HTTP/1.1). A body is read
as fast as it arrives, with ``Content-Length`` or ``Transfer-Encoding: chunked``, and
thrown away: it is neither decompressed nor parsed, so the time a client spends per
request is the client's, not the server's.

Control requests, on their own connection:

- ``GET /_sink/stats``: ``{"requests": n, "bytes": n, "connections": n}`` since start:
  requests other than control requests, their bodies' bytes as they came over the wire,
  and the connections that carried them.
- ``GET /_sink/record``: keep the headers and body of the next requests (at most 100,000
  requests or 256 MiB) until ``GET /_sink/recorded``, which answers them as frames
  ``!II`` (headers JSON length, body length), headers JSON, body, and stops recording.
  Header names are lowercase; ``:target`` holds the request target.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading

MAX_HEAD = 64 * 1024
MAX_RECORDED = 100_000
MAX_RECORDED_BYTES = 256 * 1024 * 1024
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.connections = 0
        self.recording = False
        self.recorded: list[tuple[dict[str, str], bytes]] = []
        self.recorded_bytes = 0

    def stats(self) -> bytes:
        with self.lock:
            stats = {"requests": self.requests, "bytes": self.bytes, "connections": self.connections}
        return json.dumps(stats).encode()

    def start_recording(self) -> None:
        with self.lock:
            self.recording = True
            self.recorded = []
            self.recorded_bytes = 0

    def take_recorded(self) -> bytes:
        with self.lock:
            recorded, self.recorded, self.recording = self.recorded, [], False
        frames = []
        for headers, body in recorded:
            head = json.dumps(headers).encode()
            frames.append(struct.pack("!II", len(head), len(body)) + head + body)
        return b"".join(frames)

    def count(self, size: int, headers: dict[str, str] | None, body: bytes | None, new_connection: bool) -> None:
        with self.lock:
            self.connections += new_connection
            self.requests += 1
            self.bytes += size
            if (
                headers is not None
                and body is not None
                and len(self.recorded) < MAX_RECORDED
                and self.recorded_bytes + len(body) <= MAX_RECORDED_BYTES
            ):
                self.recorded.append((headers, body))
                self.recorded_bytes += len(body)


class Connection:
    """One client connection: a read buffer over the socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.scratch = bytearray(256 * 1024)

    def fill(self) -> bool:
        n = self.sock.recv_into(self.scratch)
        if not n:
            return False
        self.buf += memoryview(self.scratch)[:n]
        return True

    def read_until(self, marker: bytes, limit: int = MAX_HEAD) -> bytes | None:
        while (end := self.buf.find(marker)) < 0:
            if len(self.buf) > limit or not self.fill():
                return None
        data = bytes(self.buf[:end])
        del self.buf[: end + len(marker)]
        return data

    def read_body(self, size: int, keep: bool) -> tuple[int, bytes | None]:
        """Read ``size`` bytes; return how many arrived and, with ``keep``, the bytes."""
        taken = min(size, len(self.buf))
        parts = [bytes(self.buf[:taken])] if keep else []
        del self.buf[:taken]
        remaining = size - taken
        while remaining:
            n = self.sock.recv_into(self.scratch, min(remaining, len(self.scratch)))
            if not n:
                raise ConnectionError("closed in the middle of a body")
            if keep:
                parts.append(bytes(self.scratch[:n]))
            remaining -= n
        return size, (b"".join(parts) if keep else None)


def read_chunked(conn: Connection, keep: bool) -> tuple[int, bytes | None]:
    total, parts = 0, []
    while True:
        line = conn.read_until(b"\r\n")
        if line is None:
            raise ConnectionError("closed in the middle of a chunked body")
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            while conn.read_until(b"\r\n"):  # trailers, up to the empty line
                pass
            return total, (b"".join(parts) if keep else None)
        _, data = conn.read_body(size, keep)
        if data is not None:
            parts.append(data)
        total += size
        if conn.read_until(b"\r\n") is None:
            raise ConnectionError("closed in the middle of a chunked body")


def serve_connection(sink: Sink, sock: socket.socket) -> None:
    conn = Connection(sock)
    first = True
    try:
        while True:
            head = conn.read_until(b"\r\n\r\n")
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("expect", "").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            keep = sink.recording and not target.startswith("/_sink/")
            if keep:
                headers[":target"] = target
            if "chunked" in headers.get("transfer-encoding", "").lower():
                size, body = read_chunked(conn, keep)
            else:
                size, body = conn.read_body(int(headers.get("content-length", "0")), keep)
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            if target.startswith("/_sink/"):
                if target == "/_sink/stats":
                    answer = sink.stats()
                elif target == "/_sink/record":
                    sink.start_recording()
                    answer = b"{}"
                elif target == "/_sink/recorded":
                    answer = sink.take_recorded()
                else:
                    answer = b""
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)
            else:
                sink.count(size, headers if keep else None, body, first)
                first = False
                sock.sendall(OK)
            if close or method == "CONNECT":
                return
    except (OSError, ValueError):
        return
    finally:
        sock.close()


def main() -> None:
    sink = Sink()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    print(f"PORT {server.getsockname()[1]}", flush=True)
    while True:
        sock, _ = server.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_connection, args=(sink, sock), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
