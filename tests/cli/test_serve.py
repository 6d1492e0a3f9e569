"""``serve``: the local server as a real subprocess (SIGINT, SIGTERM), its errors, and in-process."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import urllib3

from sentry_feedback._cli import _serve, build_parser, main
from sentry_feedback.api import FeedbackApi
from sentry_feedback.server import Arrival, LocalReceiver

from .conftest import Result, assert_no_traceback, cli_env, sdk_feedback

TIMEOUT = 30.0


class InProcessServe:
    """``cmd_serve`` on a thread of this process, with each arrival also put in ``arrived``."""

    def __init__(self, argv: list[str]) -> None:
        self.args = build_parser().parse_args(argv)
        self.stop = threading.Event()
        self.arrived: queue.Queue[Arrival] = queue.Queue()
        self.codes: list[int] = []

    @contextlib.contextmanager
    def running(self) -> Iterator[LocalReceiver]:
        """Serve while the block runs; the receiver once it is ready. The exit code lands in ``codes``."""
        ready: queue.Queue[LocalReceiver] = queue.Queue()
        original = _serve.on_arrival

        def on_arrival(arrival: Arrival) -> None:
            original(arrival)
            self.arrived.put(arrival)

        thread = threading.Thread(
            target=lambda: self.codes.append(_serve.cmd_serve(self.args, stop=self.stop, on_ready=ready.put)),
            daemon=True,
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_serve, "on_arrival", on_arrival)
            thread.start()
            try:
                yield ready.get(timeout=TIMEOUT)
            finally:
                self.stop.set()
                thread.join(TIMEOUT)


class ServeProcess:
    """``sentry-feedback serve`` in a subprocess, its stdout read line by line on a thread."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "sentry_feedback", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=cwd,
            env=cli_env(None),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate: Callable[[str], bool]) -> str:
        """The first line (from now on) for which ``predicate`` holds; fails after TIMEOUT seconds or at EOF."""
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no such line within {TIMEOUT}s; seen: {self.seen}") from None
            if line is None:
                raise AssertionError(f"serve ended; seen: {self.seen}")
            self.seen.append(line)
            if predicate(line):
                return line

    def stop(self, sig: int) -> tuple[int, str]:
        self.process.send_signal(sig)
        self.process.wait(timeout=TIMEOUT)
        assert self.process.stderr is not None
        return self.process.returncode, self.process.stderr.read()


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        started.append(ServeProcess(*args, cwd=tmp_path))
        return started[-1]

    yield start
    for proc in started:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(timeout=TIMEOUT)
        for stream in (proc.process.stdout, proc.process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_dsn_and_arrivals_and_stops_cleanly(
    serve_process: Callable[..., ServeProcess], tmp_path: Path, sig: int
) -> None:
    proc = serve_process("--port", "0", "--token", "serve-test-token", "--org", "acme", "--project", "web")
    dsn = proc.wait_for(lambda line: "DSN:" in line).split("DSN:")[1].strip()
    api_url = proc.wait_for(lambda line: "API:" in line).split("API:")[1].strip()
    assert proc.wait_for(lambda line: "org:" in line).split()[-1] == "acme"
    assert proc.wait_for(lambda line: "token:" in line).split()[-1] == "serve-test-token"
    url = api_url.removesuffix("/api/0")
    assert proc.wait_for(lambda line: "export SENTRY_URL=" in line).split() == [
        "export",
        f"SENTRY_URL={url}",
        "SENTRY_AUTH_TOKEN=serve-test-token",
        "SENTRY_ORG=acme",
    ]
    feedback_id = sdk_feedback(dsn, "hello from the\nSDK")
    arrival = proc.wait_for(lambda line: feedback_id in line)
    assert " web " in arrival and " feedback " in arrival and arrival.endswith("hello from the SDK")
    # The API answers with the printed token; the database file is in the working directory.
    with FeedbackApi(url, "serve-test-token", "acme") as api:
        assert [item.id for item in api.list()] == [feedback_id]
    assert (tmp_path / "sentry-feedback.sqlite3").exists()
    returncode, stderr = proc.stop(sig)
    assert returncode == 0
    assert "Traceback" not in stderr


def test_serve_keeps_feedback_and_token_in_its_database(
    serve_process: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    database = str(tmp_path / "kept.sqlite3")
    proc = serve_process("--port", "0", "--database", database)
    dsn = proc.wait_for(lambda line: "DSN:" in line).split("DSN:")[1].strip()
    token = proc.wait_for(lambda line: "token:" in line).split()[-1]
    assert len(token) >= 32  # made by the server
    assert dsn.startswith("http://public@127.0.0.1:") and dsn.endswith("/1")
    assert proc.stop(signal.SIGINT)[0] == 0
    again = serve_process("--port", "0", "--database", database)
    assert again.wait_for(lambda line: "token:" in line).split()[-1] == token
    assert again.stop(signal.SIGINT)[0] == 0


def run_serve(tmp_path: Path, *args: str) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "sentry_feedback", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=cli_env(None),
        stdin=subprocess.DEVNULL,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def test_serve_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve(tmp_path, "--port", str(port), "--database", ":memory:")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: the port is already in use")
    assert_no_traceback(result)


def test_serve_database_errors(tmp_path: Path) -> None:
    for database in (str(tmp_path / "missing" / "dir" / "db.sqlite3"), str(tmp_path)):
        result = run_serve(tmp_path, "--port", "0", "--database", database)
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: cannot open database")
        assert_no_traceback(result)


def test_serve_bad_options(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    for args, code, expected in (
        (["--port", "70000"], 2, "usage:"),
        (["--port", "http"], 2, "usage:"),
        (["--org", "Not A Slug"], 2, "invalid organization slug"),
        (["--project-id", "x"], 2, "invalid project id"),
        (["--token", "short"], 2, "API token"),
        (["--config", str(config)], 1, "bad config file"),
        (["--config", str(tmp_path / "nope.json")], 1, "cannot read"),
        (["--config", str(config), "--org", "acme"], 2, "--config cannot be combined with --org"),
    ):
        result = run_serve(tmp_path, *args)
        assert result.returncode == code, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert_no_traceback(result)


def test_serve_help_shows_every_default() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentry_feedback", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(None, COLUMNS="200"),
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for default in (
        "(default: 127.0.0.1)",
        "(default: 8970)",
        "(default: sentry-feedback.sqlite3)",
        "(default: local)",
        "(default: default)",
        "(default: 1)",
        "(default: public)",
        "(default: $SENTRY_FEEDBACK_TOKEN, else a new one, printed at start)",
        "(default: none)",
    ):
        assert default in text, default


def test_serve_in_process_with_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "org": "acme",
                "projects": [
                    {"slug": "web", "id": "7", "public_key": "webkey"},
                    {"slug": "app", "id": "8", "public_key": "appkey"},
                ],
                "tokens": [{"value": "config-token-1", "scopes": ["read", "write"]}],
            }
        )
    )
    serve = InProcessServe(
        ["serve", "--port", "0", "--database", ":memory:", "--config", str(config), "--read-token", "extra-read-1"]
    )
    with serve.running() as receiver:
        netloc = receiver.url.split("://")[1]
        feedback_id = sdk_feedback(f"http://appkey@{netloc}/8", "to the app project")
        assert serve.arrived.get(timeout=TIMEOUT).event_id == feedback_id
    assert serve.codes == [0]
    out = capsys.readouterr().out
    assert f"DSN:       http://webkey@{netloc}/7   (project web)" in out
    assert f"DSN:       http://appkey@{netloc}/8   (project app)" in out
    assert "token:     config-token-1" in out
    assert "read-only: extra-read-1" in out
    assert f"app          feedback    {feedback_id}  to the app project" in out


def test_serve_in_process_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1]), "--database", ":memory:"]) == 1
    assert main(["serve", "--port", "0", "--database", str(tmp_path / "no" / "db.sqlite3")]) == 1
    err = capsys.readouterr().err
    assert err.count("error: ") == 2


def test_arrival_lines_cut_messages_at_80_columns_and_summaries_at_160(capsys: pytest.CaptureFixture[str]) -> None:
    _serve.on_arrival(Arrival(0.0, "web", "feedback", "a" * 32, "x" * 200))
    _serve.on_arrival(Arrival(0.0, "web", "transaction", "b" * 32, "y" * 150))
    _serve.on_arrival(Arrival(0.0, "web", "transaction", "c" * 32, "w" * 200))
    _serve.on_arrival(Arrival(0.0, "web", "sessions", None, "z\x1b[31m"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"web          feedback    {'a' * 32}  {'x' * 79}\u2026")
    assert lines[1].endswith(f"web          transaction {'b' * 32}  {'y' * 150}")
    assert lines[2].endswith(f"web          transaction {'c' * 32}  {'w' * 159}\u2026")
    # Without an id the column keeps its width, so that the messages line up.
    assert lines[3].endswith(f"web          sessions    {'-':<32}  z\\x1b[31m")


def test_serve_prints_a_line_for_each_transaction_and_session(capsys: pytest.CaptureFixture[str]) -> None:
    serve = InProcessServe(["serve", "--port", "0", "--database", ":memory:", "--project", "web"])
    trace = {"trace_id": "771a43a4192642f0b136d5159a501700", "span_id": "b0e6f15b45c36b12", "op": "http.server"}
    spans = [{"span_id": f"{n:016x}", "start_timestamp": 10.0, "timestamp": 10.25} for n in (1, 2)]
    transaction = {"type": "transaction", "transaction": "POST /checkout", "start_timestamp": 10.0,
                   "timestamp": 10.5, "contexts": {"trace": trace}, "spans": spans}  # fmt: skip
    update = {"sid": "a754cd5a-bcf7-4676-bac1-59f5a3398018", "started": "2024-05-01T12:00:00Z", "status": "exited",
              "attrs": {"release": "shop@2.0.0"}}  # fmt: skip
    counts = {"aggregates": [{"started": "2024-05-01T12:00:00Z", "exited": 3, "crashed": 1}],
              "attrs": {"release": "shop@2.0.0"}}  # fmt: skip

    def items(*pairs: tuple[str, dict[str, object]]) -> bytes:
        lines = [json.dumps(line).encode() for kind, payload in pairs for line in ({"type": kind}, payload)]
        return b"\n".join(lines) + b"\n"

    envelopes = [
        json.dumps({"event_id": "1" * 32}).encode() + b"\n" + items(("transaction", transaction)),
        b"{}\n" + items(("session", update), ("sessions", counts)),
    ]

    with serve.running() as receiver:
        for body in envelopes:
            response = urllib3.request(
                "POST", receiver.envelope_url, body=body, headers={"X-Sentry-Auth": "Sentry sentry_key=public"}
            )
            assert response.status == 200, response.data
        kinds = [serve.arrived.get(timeout=TIMEOUT).kind for _ in range(3)]
    assert serve.codes == [0]
    assert kinds == ["transaction", "session", "sessions"]
    lines = capsys.readouterr().out.splitlines()
    arrivals = lines[lines.index("Ctrl-C stops the server. Arrivals:") + 1 :]
    assert [line[8:] for line in arrivals] == [
        f"  web          transaction {'1' * 32}  POST /checkout (http.server): 500.0 ms, 2 spans, trace 771a43a4",
        f"  web          session     {'-':<32}  exited, release shop@2.0.0, sid a754cd5a",
        f"  web          sessions    {'-':<32}  release shop@2.0.0: 4 sessions (3 exited, 1 crashed)",
    ]
