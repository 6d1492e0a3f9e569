"""Talking to a feedback server: the client options, the API object and what errors print.

Every client command (list, show, export, download, resolve, unresolve, delete) goes
through :func:`run_client_command`, which builds a
:class:`~sentry_feedback.api.FeedbackApi` from the options and the environment and
turns API errors into one ``error: <detail>`` line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._output import clean

if TYPE_CHECKING:
    from ..api import FeedbackApi

__all__ = [
    "DEFAULT_ORG",
    "DEFAULT_URL",
    "CliError",
    "add_client_options",
    "feedback_id",
    "open_api",
    "run_client_command",
]

#: Where ``sentry-feedback serve`` listens by default, so the two work together out of the box.
DEFAULT_URL = "http://127.0.0.1:8970"
#: The organization ``sentry-feedback serve`` creates by default.
DEFAULT_ORG = "local"

_ID = re.compile(r"\A[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\Z")


class CliError(Exception):
    """A failure to report as ``error: <message>`` (plus optional hint lines) with exit status ``code``."""

    def __init__(self, message: str, *hints: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hints = hints
        self.code = code


def feedback_id(text: str) -> str:
    """An argparse type: a feedback id (32 hex digits, UUID dashes allowed), returned lowercase without dashes."""
    if not _ID.match(text.strip()):
        raise argparse.ArgumentTypeError(f"not a feedback id: '{clean(text)[:80]}' (expected 32 hex digits)")
    return text.strip().replace("-", "").lower()


def add_client_options(parser: argparse.ArgumentParser, *, project: bool = True) -> None:
    """The options every client command takes: where the server is and who we are."""
    group = parser.add_argument_group("server options")
    group.add_argument("--url", metavar="URL", help=f"the server's root URL (default: $SENTRY_URL, else {DEFAULT_URL})")
    group.add_argument("--token", metavar="TOKEN", help="the API's Bearer token (default: $SENTRY_AUTH_TOKEN)")
    group.add_argument("--org", metavar="SLUG", help=f"the organization (default: $SENTRY_ORG, else {DEFAULT_ORG})")
    if project:
        group.add_argument(
            "--project",
            metavar="SLUG",
            help="the feedback's project (default: $SENTRY_PROJECT, else looked up from the id)",
        )
    group.add_argument("--timeout", type=positive_float, default=10.0, help="seconds to wait for each answer")


def positive_float(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _setting(value: str | None, env: str, default: str | None = None) -> str | None:
    if value:
        return value
    return os.environ.get(env) or default


def server_url(args: argparse.Namespace) -> str:
    """The server root URL from ``--url``, ``$SENTRY_URL`` or the default."""
    return _setting(getattr(args, "url", None), "SENTRY_URL", DEFAULT_URL) or DEFAULT_URL


def open_api(args: argparse.Namespace) -> FeedbackApi:
    """A :class:`FeedbackApi` for the client options in ``args`` (the environment fills the gaps)."""
    from ..api import FeedbackApi

    token = _setting(args.token, "SENTRY_AUTH_TOKEN")
    if not token:
        raise CliError(
            "no API token: pass --token or set SENTRY_AUTH_TOKEN",
            "sentry-feedback serve prints the token of the local server",
        )
    project = getattr(args, "project", None)
    default_project = project if isinstance(project, str) and project else os.environ.get("SENTRY_PROJECT") or None
    org = _setting(args.org, "SENTRY_ORG", DEFAULT_ORG) or DEFAULT_ORG
    try:
        return FeedbackApi(server_url(args), token, org, project=default_project, timeout=args.timeout)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def run_client_command(args: argparse.Namespace, command: Callable[[FeedbackApi, argparse.Namespace], int]) -> int:
    """Run ``command`` with an API built from ``args``; print API errors as ``error: <detail>``, return 1 for them."""
    from ..api import ApiConnectionError, ApiError, Forbidden, Unauthorized

    try:
        with open_api(args) as api:
            return command(api, args)
    except ApiConnectionError as exc:
        url = server_url(args)
        print_error(
            f"cannot reach the server at {clean(url)}: {describe_api_error(exc)}",
            "start a local one with `sentry-feedback serve`, or pass --url (or set SENTRY_URL)",
        )
    except Unauthorized as exc:
        print_error(describe_api_error(exc), "check --token (or SENTRY_AUTH_TOKEN)")
    except Forbidden as exc:
        print_error(describe_api_error(exc), "the token may not do this (changes need a token with write scope)")
    except ApiError as exc:
        print_error(describe_api_error(exc))
    except CliError as exc:
        print_error(exc.message, *exc.hints)
        return exc.code
    return 1


def describe_api_error(exc: Exception) -> str:
    """One safe line for an :class:`~sentry_feedback.api.ApiError`: its detail and per-field errors."""
    detail = clean(getattr(exc, "detail", None) or str(exc) or type(exc).__name__)
    errors = getattr(exc, "errors", None) or {}
    extra = "; ".join(f"{clean(field)}: {clean(' '.join(map(str, problems)))}" for field, problems in errors.items())
    return f"{detail} ({extra})" if extra else detail


def print_error(message: str, *hints: str) -> None:
    """``error: <message>`` and ``hint: ...`` lines on stderr."""
    print(f"error: {message}", file=sys.stderr)
    for hint in hints:
        print(f"hint: {hint}", file=sys.stderr)
    sys.stderr.flush()
