"""A scripted HTTP server on 127.0.0.1 for the API client tests (stdlib ``http.server``).

:class:`ScriptedServer` records every request (:class:`Recorded`) and answers it with
the next :class:`Answer` queued by :meth:`ScriptedServer.script`, else with what its
``handler`` (a callable ``handler(request) -> Answer``) returns, else ``404``. It plays
"any server following Sentry's conventions": retries, rate limits, odd bodies, Link
headers. Threaded, port 0, keep-alive (HTTP/1.1 with ``Content-Length``).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Answer", "Recorded", "ScriptedServer"]


@dataclass(frozen=True)
class Answer:
    """One scripted answer: ``body`` bytes go as they are, anything else but None as JSON."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # wait for this event before answering


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        """The query parameters (repeated ones as several values)."""
        return urllib.parse.parse_qs(self.raw_query, keep_blank_values=True)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class ScriptedServer:
    """An HTTP server on a free port of 127.0.0.1 answering from a script; a context manager."""

    def __init__(self, handler: Callable[[Recorded], Answer] | None = None) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._holds: list[threading.Event] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def script(self, *answers: Answer) -> None:
        """Queue answers for the next requests, in order."""
        with self._lock:
            self._answers.extend(answers)
            self._holds.extend(answer.hold for answer in answers if answer.hold is not None)

    def start(self) -> ScriptedServer:
        """Start serving on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release held answers, stop serving and close the socket."""
        with self._lock:
            for hold in self._holds:
                hold.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _answer(self, request: Recorded) -> Answer:
        with self._lock:
            self.requests.append(request)
            if self._answers:
                return self._answers.popleft()
        if self.handler is not None:
            return self.handler(request)
        return Answer(404, {"detail": "The requested resource does not exist"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, raw_query = self.path.partition("?")
                request = Recorded(self.command, path, raw_query, dict(self.headers.items()), body)
                answer = server._answer(request)
                if answer.hold is not None:
                    answer.hold.wait(10)
                if isinstance(answer.body, bytes):
                    data = answer.body
                elif answer.body is None:
                    data = b""
                else:
                    data = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                headers = {k.lower(): v for k, v in answer.headers.items()}
                if "content-type" not in headers and answer.body is not None and not isinstance(answer.body, bytes):
                    self.send_header("Content-Type", "application/json")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (the tests of its timeouts)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle

        return Handler
