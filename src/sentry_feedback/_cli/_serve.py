"""``sentry-feedback serve``: a local feedback server (envelope ingest + REST API) until Ctrl-C."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._connect import CliError
from ._output import clean, excerpt

if TYPE_CHECKING:
    from ..server import Arrival, LocalReceiver, Project, ServerConfig

__all__ = ["DEFAULT_PORT", "cmd_serve"]

#: The port ``serve`` listens on and the client commands talk to by default.
DEFAULT_PORT = 8970

_print_lock = threading.Lock()
#: The kinds of arrival whose message is a summary made by the server, not a message someone wrote.
_SUMMARIZED = frozenset({"transaction", "session", "sessions"})


def _say(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def on_arrival(arrival: Arrival) -> None:
    """Print one line for a stored feedback, event, transaction or session: time, project, kind, id, message.

    The message of a feedback or an event is cut at 80 columns; the summary of a transaction or a session
    (bounded by the server) at 160, so that its last part (a trace id) stays.
    """
    when = time.strftime("%H:%M:%S", time.localtime(arrival.received_at))
    width = 160 if arrival.kind in _SUMMARIZED else 80
    text = excerpt(arrival.message, width) if arrival.message else "(no message)"
    event_id = clean(arrival.event_id or "-")
    _say(f"{when}  {clean(arrival.project):<12} {clean(arrival.kind):<11} {event_id:<32}  {text}")


def _load_config(path: str) -> ServerConfig:
    from ..server import ServerConfig

    try:
        return ServerConfig.load(path)
    except OSError as exc:
        raise CliError(f"cannot read {clean(path)}: {clean(exc.strerror or exc)}") from None
    except ValueError as exc:  # not JSON, or not a valid configuration
        raise CliError(f"bad config file: {clean(exc)}") from None


def build_receiver(args: argparse.Namespace) -> LocalReceiver:
    """The :class:`LocalReceiver` for the ``serve`` options (not started); :class:`CliError` for bad values."""
    from ..server import ApiToken, LocalReceiver, Project, ServerConfig

    token = args.token or os.environ.get("SENTRY_FEEDBACK_TOKEN") or None
    try:
        tokens = [ApiToken(token)] if token else []
        if args.read_token:
            tokens.append(ApiToken(args.read_token, frozenset({"read"})))
        if args.config:
            given = [flag for flag in ("org", "project", "project_id", "public_key") if getattr(args, flag) is not None]
            if given:
                flags = ", ".join("--" + flag.replace("_", "-") for flag in given)
                raise CliError(f"--config cannot be combined with {flags}: the file sets those", code=2)
            config = _load_config(args.config)
            config = dataclasses.replace(config, tokens=(*config.tokens, *tokens))
        else:
            project = Project(args.project or "default", args.project_id or "1", args.public_key or "public")
            config = ServerConfig(args.org or "local", (project,), tuple(tokens))
    except ValueError as exc:
        raise CliError(clean(exc), code=2) from None
    return LocalReceiver(
        host=args.host,
        port=args.port,
        database=args.database,
        config=config,
        record_requests=0,
        on_arrival=on_arrival,
    )


def _start(receiver: LocalReceiver, args: argparse.Namespace) -> None:
    database = args.database
    if database != ":memory:" and not database.startswith("file:"):
        folder = os.path.dirname(os.path.abspath(database))
        if not os.path.isdir(folder):
            raise CliError(f"cannot open database {clean(database)}: folder {clean(folder)} does not exist")
    try:
        receiver.start()
    except sqlite3.Error as exc:
        raise CliError(f"cannot open database {clean(database)}: {clean(exc)}") from None
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL) or isinstance(exc, PermissionError):
            reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else clean(exc.strerror or exc)
            raise CliError(f"cannot listen on {clean(args.host)}:{args.port}: {reason} (try another --port)") from None
        raise CliError(f"cannot start the server: {clean(exc.strerror or exc)}") from None


def _dsn(receiver: LocalReceiver, project: Project) -> str:
    scheme, _, netloc = receiver.url.partition("://")
    return f"{scheme}://{project.public_key}@{netloc}/{project.id}"


def _banner(receiver: LocalReceiver) -> None:
    org, token = receiver.org, receiver.api_token
    _say(f"sentry-feedback server listening on {receiver.url}")
    projects = receiver.config.projects
    if len(projects) == 1:
        _say(f"  DSN:       {receiver.dsn}")
    for project in projects if len(projects) > 1 else ():
        _say(f"  DSN:       {_dsn(receiver, project)}   (project {project.slug})")
    _say(f"  inbox:     {receiver.inbox_url}   (open it in a browser: the link signs you in)")
    _say(f"  API:       {receiver.api_url}")
    _say(f"  org:       {org}")
    _say(f"  token:     {token}")
    for extra in receiver.config.tokens:
        if extra.scopes == frozenset({"read"}):
            _say(f"  read-only: {extra.value}")
    _say("")
    _say("send feedback with the SDK: sentry_feedback.init(dsn=<the DSN above>), or `sentry-feedback send`")
    _say("browse it with the CLI:")
    _say(f"  export SENTRY_URL={receiver.url} SENTRY_AUTH_TOKEN={token} SENTRY_ORG={org}")
    _say("  sentry-feedback list")
    _say("Ctrl-C stops the server. Arrivals:")


def cmd_serve(
    args: argparse.Namespace,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[LocalReceiver], object] | None = None,
) -> int:
    """Run the server until Ctrl-C, SIGTERM or ``stop`` is set; print the DSN, the API and one line per arrival.

    ``on_ready`` is called with the running server once the banner is printed.
    """
    receiver = build_receiver(args)
    _start(receiver, args)
    stop = stop if stop is not None else threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()

    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)

    # Ctrl-C and SIGTERM only note the signal. Neither a KeyboardInterrupt raised wherever the main thread
    # happens to be, nor stop.set() (which takes the lock the interrupted stop.wait() may hold), is safe in
    # a signal handler: either can leave the process unable to stop.
    previous: dict[int, Any] = {}
    if in_main_thread:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        _banner(receiver)
        if on_ready is not None:
            on_ready(receiver)
        while not signalled and not stop.wait(0.2):
            pass
    finally:
        receiver.stop()
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
    print("stopped", file=sys.stderr, flush=True)
    return 0
