"""``sentry-feedback export``: every matching feedback as JSON lines or CSV.

CSV cells hold flat values: nested objects become dotted columns (``user.email``),
lists are joined with commas, tags and the request are compact JSON, and a text cell
that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) is prefixed with ``'``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from ._browse import feedback_json, iter_feedback
from ._connect import CliError
from ._output import clean

if TYPE_CHECKING:
    from ..api import FeedbackApi, UserFeedback

__all__ = ["CSV_COLUMNS", "cmd_export", "csv_row", "neutralize"]

#: The CSV columns, in order: every seed attribute (nested ones flattened) and the extensions.
CSV_COLUMNS = (
    "id",
    "timestamp",
    "status",
    "project",
    "project_id",
    "environment",
    "release",
    "dist",
    "platform",
    "message",
    "name",
    "contact_email",
    "url",
    "user.id",
    "user.email",
    "user.username",
    "user.display_name",
    "user.ip",
    "browser.name",
    "browser.version",
    "os.name",
    "os.version",
    "device.brand",
    "device.family",
    "device.model",
    "device.name",
    "locale.lang",
    "locale.timezone",
    "sdk.name",
    "sdk.version",
    "error_ids",
    "trace_ids",
    "replay_id",
    "tags",
    "request",
    "attachment_count",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    """``text`` safe for a spreadsheet cell: a leading ``'`` when it would start a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return neutralize(",".join(str(v) for v in value))
    if isinstance(value, Mapping):
        text = json.dumps(dict(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        return neutralize(text) if value else ""
    return neutralize(str(value))


def csv_row(data: Mapping[str, Any], columns: tuple[str, ...] = CSV_COLUMNS) -> list[str]:
    """The cells of one feedback (in the seed's JSON shape) for ``columns``."""
    row: list[str] = []
    for column in columns:
        head, _, rest = column.partition(".")
        value = data.get(head)
        if rest:
            value = value.get(rest) if isinstance(value, Mapping) else None
        row.append(_cell(value))
    return row


def _columns(fields: list[str] | None) -> tuple[str, ...]:
    if not fields:
        return CSV_COLUMNS
    wanted = set(fields) | {"id"}
    return tuple(c for c in CSV_COLUMNS if c.partition(".")[0] in wanted)


def _write(items: Iterator[UserFeedback], args: argparse.Namespace, out: TextIO) -> int:
    count = 0
    if args.format == "csv":
        columns = _columns(args.field)
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for item in items:
            writer.writerow(csv_row(item.to_json(), columns))
            count += 1
    else:
        for item in items:
            out.write(feedback_json(item, raw=bool(args.field)) + "\n")
            count += 1
    return count


def cmd_export(api: FeedbackApi, args: argparse.Namespace) -> int:
    """Write every matching feedback to stdout or ``--output`` (written to a temporary file, then renamed)."""
    items = iter_feedback(api, args)
    if args.output in (None, "-"):
        count = _write(items, args, sys.stdout)
        sys.stdout.flush()
    else:
        target = os.path.abspath(args.output)
        folder = os.path.dirname(target)
        try:
            fd, partial = tempfile.mkstemp(prefix=".sentry-feedback-export-", dir=folder)
        except OSError as exc:
            raise CliError(f"cannot write {clean(args.output)}: {clean(exc.strerror or exc)}") from None
        try:
            with open(fd, "w", encoding="utf-8", newline="") as fh:
                count = _write(items, args, fh)
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
    where = "stdout" if args.output in (None, "-") else clean(args.output)
    print(f"exported {count} feedback to {where}", file=sys.stderr)
    return 0
