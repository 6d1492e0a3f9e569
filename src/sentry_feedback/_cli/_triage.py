"""Changing feedback: ``resolve``, ``unresolve`` and ``delete``.

Each id is handled on its own: one that fails (unknown, say) is reported and the
others still go ahead; the exit status is 1 when any failed. An unreachable server
or a refused token stops at once.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ._connect import CliError, describe_api_error, print_error
from ._output import Style

if TYPE_CHECKING:
    from ..api import FeedbackApi

__all__ = ["cmd_delete", "cmd_resolve", "cmd_unresolve"]


def _each(api: FeedbackApi, args: argparse.Namespace, action: str) -> int:
    from ..api import ApiConnectionError, ApiError, Forbidden, Unauthorized

    style = Style.for_stream(sys.stdout)
    failed = 0
    for feedback_id in dict.fromkeys(args.ids):  # each id once, in the given order
        try:
            if action == "resolve":
                api.resolve(feedback_id, project=args.project)
            elif action == "unresolve":
                api.unresolve(feedback_id, project=args.project)
            else:
                api.delete(feedback_id, project=args.project)
        except (ApiConnectionError, Unauthorized, Forbidden):
            raise
        except ApiError as exc:
            print_error(f"{feedback_id}: {describe_api_error(exc)}")
            failed += 1
            continue
        past = {"resolve": "resolved", "unresolve": "unresolved", "delete": "deleted"}[action]
        print(f"{style.status(past) if action != 'delete' else style.red(past)} {feedback_id}", flush=True)
    return 1 if failed else 0


def cmd_resolve(api: FeedbackApi, args: argparse.Namespace) -> int:
    """``sentry-feedback resolve ID...``: mark feedback as resolved."""
    return _each(api, args, "resolve")


def cmd_unresolve(api: FeedbackApi, args: argparse.Namespace) -> int:
    """``sentry-feedback unresolve ID...``: mark feedback as unresolved again."""
    return _each(api, args, "unresolve")


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def confirm_delete(ids: list[str]) -> None:
    """Ask on the terminal before deleting; raise :class:`CliError` when refused or when there is no terminal."""
    if not _stdin_is_terminal():
        raise CliError("refusing to delete without confirmation: pass --yes (there is no terminal to ask on)")
    unique = list(dict.fromkeys(ids))
    what = unique[0] if len(unique) == 1 else f"{len(unique)} feedback"
    try:
        answer = input(f"delete {what} and its attachments? this cannot be undone [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError("nothing deleted")


def cmd_delete(api: FeedbackApi, args: argparse.Namespace) -> int:
    """``sentry-feedback delete ID...``: delete feedback and their attachments (asks unless ``--yes``)."""
    if not args.yes:
        confirm_delete(args.ids)
    return _each(api, args, "delete")
