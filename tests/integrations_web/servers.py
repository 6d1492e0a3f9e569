"""gunicorn and uvicorn as subprocesses on a free port of 127.0.0.1, serving ``apps.py``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
GUNICORN_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
UVICORN_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def _executable(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed: it is in the test extra")
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


class ServerProcess:
    """A server started with ``arguments``; its log lines are kept in :attr:`lines` as they come."""

    def __init__(self, name: str, arguments: list[str], listening: re.Pattern[str], env: dict[str, str]) -> None:
        self.name = name
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "WEB_TEST_"))}
        clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), clean.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            arguments,
            cwd=HERE,
            env={**clean, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = int(self.wait_for(listening).group(1))
        self._wait_for_connect()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """The first log line matching ``pattern``, waiting for it up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = pattern.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no log line matches {pattern.pattern!r}:\n{''.join(self.lines)}")
                self._changed.wait(remaining)

    def _wait_for_connect(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(f"the server does not accept connections:\n{''.join(self.lines)}") from None
                with self._changed:
                    self._changed.wait(0.05)  # a new log line or 50 ms, whichever comes first

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        """Stop the server gracefully (SIGTERM); return everything it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return "".join(self.lines)


def gunicorn(dsn: str) -> ServerProcess:
    """gunicorn with one threaded worker (two threads) serving ``apps:wsgi_application``."""
    return gunicorn_serving("apps:wsgi_application", HERE, {"WEB_TEST_DSN": dsn, "WEB_TEST_SERVER": "gunicorn"})


def uvicorn(dsn: str) -> ServerProcess:
    """uvicorn serving ``apps:asgi_application`` with the lifespan protocol on."""
    return uvicorn_serving("apps:asgi_application", HERE, {"WEB_TEST_DSN": dsn, "WEB_TEST_SERVER": "uvicorn"})


def uvicorn_serving(app: str, app_dir: Path, env: dict[str, str]) -> ServerProcess:
    """uvicorn serving ``app`` (``module:attribute``) found in ``app_dir``, with the lifespan protocol on."""
    arguments = [
        _executable("uvicorn"),
        "--host=127.0.0.1",
        "--port=0",
        "--lifespan=on",
        "--log-level=info",
        f"--app-dir={app_dir}",
        app,
    ]
    return ServerProcess("uvicorn", arguments, UVICORN_LISTENING, env)


def gunicorn_serving(app: str, chdir: Path, env: dict[str, str]) -> ServerProcess:
    """gunicorn with one threaded worker (two threads) serving ``app`` (``module:attribute``) found in ``chdir``."""
    arguments = [
        _executable("gunicorn"),
        "--bind=127.0.0.1:0",
        "--workers=1",
        "--threads=2",
        "--worker-class=gthread",
        "--no-control-socket",
        "--log-level=info",
        f"--chdir={chdir}",
        app,
    ]
    return ServerProcess("gunicorn", arguments, GUNICORN_LISTENING, env)
