"""``sentry-feedback send``: send one feedback through the SDK, the way an application would."""

from __future__ import annotations

import argparse
import os
import stat
import sys

from ._connect import CliError
from ._output import ProgressBar, clean

__all__ = ["PROGRESS_THRESHOLD", "cmd_send"]

#: Attachments larger than this in total get a progress bar (when stderr is a terminal).
PROGRESS_THRESHOLD = 1024 * 1024
_BLOCK = 256 * 1024


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def _check_files(paths: list[str]) -> list[tuple[str, int]]:
    """Each path with its size; :class:`CliError` for one that is missing or not a regular file."""
    checked: list[tuple[str, int]] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError as exc:
            raise CliError(f"cannot read attachment {clean(path)}: {clean(exc.strerror or exc)}") from None
        if not stat.S_ISREG(info.st_mode):
            raise CliError(f"attachment {clean(path)} is not a regular file")
        checked.append((path, info.st_size))
    return checked


def _read_with_progress(files: list[tuple[str, int]], bar: ProgressBar) -> list[bytes]:
    contents: list[bytes] = []
    for path, _size in files:
        chunks: list[bytes] = []
        try:
            with open(path, "rb") as fh:
                while block := fh.read(_BLOCK):
                    chunks.append(block)
                    bar.advance(len(block))
        except OSError as exc:
            bar.finish()
            raise CliError(f"cannot read attachment {clean(path)}: {clean(exc.strerror or exc)}") from None
        contents.append(b"".join(chunks))
    return contents


def cmd_send(args: argparse.Namespace) -> int:
    """Send ``args.message`` with the SDK to ``--dsn`` (or ``$SENTRY_DSN``) and print the feedback id."""
    from .. import _api, _context
    from .._attachment import Attachment
    from ..exceptions import FeedbackError, SentryFeedbackError

    dsn = args.dsn or os.environ.get("SENTRY_DSN")
    if not dsn:
        raise CliError(
            "no DSN: pass --dsn or set SENTRY_DSN", "sentry-feedback serve prints the DSN of the local server"
        )
    files = _check_files(args.attach or [])
    total = sum(size for _, size in files)
    bar: ProgressBar | None = None
    if total > PROGRESS_THRESHOLD and _stderr_is_terminal():
        bar = ProgressBar(total, "reading attachments")
        contents = _read_with_progress(files, bar)
        attachments = [
            Attachment(data, filename=os.path.basename(path)) for (path, _), data in zip(files, contents, strict=True)
        ]
        bar.set_label("sending…")
    else:
        attachments = [Attachment(path=path) for path, _ in files]
    options: dict[str, object] = {}
    if args.environment:
        options["environment"] = args.environment
    if args.release:
        options["release"] = args.release
    try:
        client = _api.init(dsn=dsn, **options)
    except (ValueError, TypeError) as exc:
        if bar is not None:
            bar.finish("not sent")
        raise CliError(f"bad DSN or option: {clean(exc)}") from None
    try:
        feedback_id = _api.send_feedback(
            args.message,
            email=args.email,
            name=args.name,
            url=args.url,
            associated_event_id=args.associated_event_id,
            attachments=attachments or None,
            timeout=args.timeout,
        )
    except (FeedbackError, SentryFeedbackError, ValueError) as exc:
        if bar is not None:
            bar.finish("not sent")
        raise CliError(f"the feedback was not sent: {clean(exc)}") from None
    finally:
        client.close(min(args.timeout, 5.0))
        _context.set_client(None)
    if bar is not None:
        bar.finish("sent")
    print(feedback_id, flush=True)
    return 0
