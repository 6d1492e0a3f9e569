"""The command-line tool ``sentry-feedback`` (also ``python -m sentry_feedback``).

``serve`` runs a local feedback server; ``send`` sends a feedback through the SDK;
``list``, ``show``, ``export``, ``download``, ``resolve``, ``unresolve`` and ``delete``
talk to any server that follows Sentry's user-feedback REST API through
:class:`sentry_feedback.api.FeedbackApi`; ``demo`` shows all of it in one process.
This module holds :func:`main` and the argument parser; each command lives in its
own module.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ._connect import (
    DEFAULT_URL,
    CliError,
    add_client_options,
    feedback_id,
    positive_float,
    print_error,
    run_client_command,
)
from ._serve import DEFAULT_PORT

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
User feedback from the command line: run a local server, send feedback with the SDK,
and browse, triage and export it through Sentry's REST API (any compatible server)."""

_EPILOG = f"""\
quick start:
  sentry-feedback serve                      # prints a DSN and an API token
  sentry-feedback send "It works" --dsn DSN  # what an application does
  export SENTRY_AUTH_TOKEN=TOKEN             # the token serve printed
  sentry-feedback list

environment: SENTRY_URL (default {DEFAULT_URL}), SENTRY_AUTH_TOKEN, SENTRY_ORG,
SENTRY_PROJECT, SENTRY_DSN (for send), SENTRY_FEEDBACK_TOKEN (for serve), NO_COLOR.
exit status: 0 ok, 1 error, 2 bad usage."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default; options whose default is computed say so in their help instead."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


def _per_page(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 1 to 100 (the API's limit), not {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, not {value}")
    return value


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("-q", "--query", help="Sentry search syntax, e.g. 'message:*pay* has:error'")
    group.add_argument("--status", choices=("resolved", "unresolved"), help="adds status:... to the query")
    group.add_argument("--environment", action="append", metavar="ENV", help="only this environment (repeatable)")
    group.add_argument(
        "--project",
        action="append",
        metavar="SLUG",
        help="only this project, slug or id (repeatable; default: $SENTRY_PROJECT, else all)",
    )
    group.add_argument(
        "--sort",
        choices=("timestamp", "-timestamp", "projectId", "-projectId"),
        help="order (write --sort=-timestamp for a leading dash; default: the server's, newest first)",
    )
    group.add_argument("--period", metavar="PERIOD", help="statsPeriod: how far back, e.g. 24h, 14d (server: 7d)")
    group.add_argument("--start", metavar="ISO8601", help="from this time (with --end, instead of --period)")
    group.add_argument("--end", metavar="ISO8601", help="until this time (with --start)")
    group.add_argument("--per-page", type=_per_page, metavar="N", help="items per request, 1 to 100 (server: 10)")
    group.add_argument("--limit", type=_positive_int, metavar="N", help="at most N items, following the pages")
    group.add_argument("--field", action="append", metavar="NAME", help="return only this attribute (repeatable)")


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run a local feedback server (SDK ingest + REST API, stored in SQLite)",
        description="Run a local feedback server until Ctrl-C: it takes envelopes from SDKs at the DSN it prints "
        "and serves Sentry's user-feedback REST API under /api/0 for the other commands.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port to listen on (0: any free port)")
    parser.add_argument("--database", default="sentry-feedback.sqlite3", help="SQLite file (or :memory:)")
    parser.add_argument("--org", metavar="SLUG", help="the organization slug (default: local)")
    parser.add_argument("--project", metavar="SLUG", help="the project slug (default: default)")
    parser.add_argument("--project-id", metavar="N", help="the project id in the DSN (default: 1)")
    parser.add_argument("--public-key", metavar="KEY", help="the DSN's public key (default: public)")
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="the read+write API token (default: $SENTRY_FEEDBACK_TOKEN, else a new one, printed at start)",
    )
    parser.add_argument("--read-token", metavar="TOKEN", help="an extra read-only API token (default: none)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help='JSON file for several projects (default: none): {"org": ..., "projects": [{"slug", "id", '
        '"public_key"}], "tokens": [{"value", "scopes"}]}; replaces --org/--project/--project-id/--public-key',
    )


def _add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def add(name: str, help: str, description: str, *, project: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, description=description, formatter_class=_HelpFormatter)
        add_client_options(parser, project=project)
        return parser

    listing = add(
        "list",
        "list feedback as a table (one page unless --all or --limit)",
        "List feedback, newest first. With --json, prints JSON lines: one compact JSON object per feedback "
        "(the attributes of Sentry's user-feedback API), ready for jq.",
        project=False,
    )
    _add_filters(listing)
    listing.add_argument("--all", action="store_true", help="follow the pages to the last one")
    listing.add_argument("--json", action="store_true", help="JSON lines (one object per line) instead of a table")

    show = add("show", "show one feedback: attributes, attachments, linked error", "Show everything about a feedback.")
    show.add_argument("id", type=feedback_id, metavar="ID", help="the feedback id (32 hex digits)")
    show.add_argument("--json", action="store_true", help='one JSON object: {"feedback", "attachments", "error"}')

    for name, verb in (("resolve", "mark as resolved"), ("unresolve", "mark as unresolved")):
        triage = add(name, f"{verb} (one or more ids)", f"Feedback: {verb}.")
        triage.add_argument("ids", nargs="+", type=feedback_id, metavar="ID", help="feedback ids")

    delete = add(
        "delete",
        "delete feedback and its attachments",
        "Delete feedback and its attachments. Asks first on a terminal; without one, needs --yes.",
    )
    delete.add_argument("ids", nargs="+", type=feedback_id, metavar="ID", help="feedback ids")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    export = add(
        "export",
        "export every matching feedback as JSON lines or CSV",
        "Export every matching feedback (all pages). jsonl: one JSON object per line. csv: one row per "
        "feedback, nested attributes as dotted columns (user.email), lists comma-joined, tags and request as "
        "JSON; cells starting with = + - @ are prefixed with ' so spreadsheets do not run them.",
        project=False,
    )
    _add_filters(export)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")

    download = add(
        "download",
        "save a feedback's attachments into a folder",
        "Save the attachments of a feedback into a folder, under safe file names (never outside the folder, "
        "never over an existing file).",
    )
    download.add_argument("id", type=feedback_id, metavar="ID", help="the feedback id (32 hex digits)")
    download.add_argument("--to", metavar="DIR", help="the folder (default: ./ID)")


def _add_send(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = commands.add_parser(
        "send",
        help="send a feedback through the SDK (to a DSN)",
        description="Send a feedback the way an application does (sentry_feedback.send_feedback) and print its id.",
        formatter_class=_HelpFormatter,
    )
    send.add_argument("message", metavar="MESSAGE", help="what the user says")
    send.add_argument("--email", help="the user's contact email")
    send.add_argument("--name", help="the user's name")
    send.add_argument("--url", help="the page the feedback is about")
    send.add_argument("--associated-event-id", metavar="ID", help="the error event this feedback is about")
    send.add_argument(
        "--attach", action="extend", nargs="+", metavar="FILE", help="files to attach (put MESSAGE first)"
    )
    send.add_argument("--dsn", help="where to send (default: $SENTRY_DSN)")
    send.add_argument("--environment", help="the SDK's environment option")
    send.add_argument("--release", help="the SDK's release option")
    send.add_argument("--timeout", type=positive_float, default=30.0, help="seconds to wait for the server's answer")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sentry-feedback`` with every command."""
    parser = argparse.ArgumentParser(
        prog="sentry-feedback",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sentry-feedback {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_client_commands(commands)
    _add_send(commands)
    commands.add_parser(
        "demo",
        help="send feedback to an embedded server and show it through the API",
        description="Send an error and a feedback with attachments to an embedded server, show what arrived "
        "and what the REST API (and so the other commands) gives.",
        formatter_class=_HelpFormatter,
    )
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if getattr(args, "start", None) is not None or getattr(args, "end", None) is not None:
        if args.start is None or args.end is None:
            parser.error("--start and --end go together")
        if args.period is not None:
            parser.error("--period cannot be combined with --start/--end")


def _run(args: argparse.Namespace) -> int:
    command = args.command
    if command == "demo":
        from ._demo import demo

        return demo(lambda text: print(text, flush=True))
    if command == "serve":
        from ._serve import cmd_serve

        return cmd_serve(args)
    if command == "send":
        from ._send import cmd_send

        return cmd_send(args)
    if command in ("list", "show", "download"):
        from . import _browse

        browse = {"list": _browse.cmd_list, "show": _browse.cmd_show, "download": _browse.cmd_download}
        return run_client_command(args, browse[command])
    if command == "export":
        from ._export import cmd_export

        return run_client_command(args, cmd_export)
    from . import _triage

    triage = {"resolve": _triage.cmd_resolve, "unresolve": _triage.cmd_unresolve, "delete": _triage.cmd_delete}
    return run_client_command(args, triage[command])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sentry_feedback`` and ``sentry-feedback``; returns the exit status.

    0: done; 1: an error, said in one ``error: ...`` line on stderr; 2: bad usage.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check(parser, args)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        return _run(args)
    except CliError as exc:
        print_error(exc.message, *exc.hints)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, without a second error at exit.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
