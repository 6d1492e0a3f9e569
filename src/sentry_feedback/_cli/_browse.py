"""Reading feedback: ``list``, ``show`` and ``download``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._connect import CliError, describe_api_error
from ._output import Style, clean, excerpt, format_size, format_time, render_table, terminal_width

if TYPE_CHECKING:
    from ..api import FeedbackApi, FeedbackAttachment, UserFeedback

__all__ = [
    "cmd_download",
    "cmd_list",
    "cmd_show",
    "event_summary",
    "feedback_json",
    "filters",
    "iter_feedback",
    "print_table",
    "safe_filename",
    "table_lines",
]

TABLE_HEADERS = ("ID", "TIME (UTC)", "STATUS", "PROJECT", "ENVIRONMENT", "CONTACT", "MESSAGE")
_MAX_WIDTHS = (32, 19, 10, 20, 16, 32, 60)
# The attributes `show` prints first, in this order; every other one follows alphabetically.
_SHOW_FIRST = ("message", "status", "timestamp", "project", "project_id", "name", "contact_email", "url")


def filters(args: argparse.Namespace) -> dict[str, Any]:
    """The :meth:`FeedbackApi.list` keyword arguments for the filter options of ``list`` and ``export``."""
    query = (args.query or "").strip()
    if args.status:
        query = f"{query} status:{args.status}".strip()
    projects = args.project or ([os.environ["SENTRY_PROJECT"]] if os.environ.get("SENTRY_PROJECT") else None)
    return {
        "query": query or None,
        "environment": args.environment or None,
        "project": projects,
        "sort": args.sort,
        "stats_period": args.period,
        "start": args.start,
        "end": args.end,
        "per_page": args.per_page,
        # The id is always asked for: every line and row shows which feedback it is.
        "field": list(dict.fromkeys(["id", *args.field])) if args.field else None,
    }


def iter_feedback(api: FeedbackApi, args: argparse.Namespace) -> Iterator[UserFeedback]:
    """Every feedback matching the filters in ``args`` (up to ``--limit``), following the pages."""
    return api.list(**filters(args), limit=args.limit)


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def feedback_json(item: UserFeedback, *, raw: bool) -> str:
    """One feedback as a compact JSON line: as the server sent it (``raw``) or in the seed's shape."""
    data = dict(item.raw) if raw and item.raw else item.to_json()
    # ASCII only (\uXXXX escapes, lossless): no escape sequence or bidi control reaches a terminal.
    return json.dumps(data, default=_json_default, separators=(",", ":"))


def _row(item: UserFeedback) -> list[str]:
    contact = item.contact_email or item.name or item.user.email or ""
    if item.name and item.contact_email:
        contact = f"{item.name} <{item.contact_email}>"
    return [
        clean(item.id),
        format_time(item.timestamp),
        clean(item.status or "-"),
        clean(item.project or item.project_id or "-"),
        clean(item.environment or "-"),
        excerpt(contact or "-", 40),
        excerpt(item.message, 200),
    ]


def table_lines(items: Iterable[UserFeedback], style: Style, width: int | None = None) -> list[str]:
    """The lines of the ``list`` table for ``items`` (none when there are no items)."""
    rows = [_row(item) for item in items]
    if not rows:
        return []
    colour = [style.dim, None, style.status, None, None, None, None]
    return render_table(TABLE_HEADERS, rows, style=style, max_widths=_MAX_WIDTHS, colour=colour, total_width=width)


def print_table(items: Iterable[UserFeedback]) -> int:
    """Print the feedback table of ``items`` on stdout; return how many rows it has."""
    lines = table_lines(items, Style.for_stream(sys.stdout), terminal_width(sys.stdout))
    if lines:
        print("\n".join(lines), flush=True)
    return max(0, len(lines) - 1)


def cmd_list(api: FeedbackApi, args: argparse.Namespace) -> int:
    """``sentry-feedback list``: one page of matching feedback (every page with ``--all`` or ``--limit``)."""
    raw = bool(args.field)
    if args.all or args.limit is not None:
        items: Iterable[UserFeedback] = iter_feedback(api, args)
        if args.json:
            for item in items:
                print(feedback_json(item, raw=raw), flush=True)
            return 0
        if print_table(items) == 0:
            print("no feedback matches", file=sys.stderr)
        return 0
    page = api.page(**filters(args))
    if args.json:
        for item in page.items:
            print(feedback_json(item, raw=raw))
    elif print_table(page.items) == 0:
        print("no feedback matches", file=sys.stderr)
    if page.has_next:
        total = f" of {page.hits}" if page.hits is not None else ""
        print(
            f"showing {len(page.items)}{total}; pass --all for every page, or --limit N / --per-page N",
            file=sys.stderr,
        )
    return 0


def _flatten(prefix: str, value: object, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append((prefix, "-"))
        for key in sorted(value, key=str):
            _flatten(f"{prefix}.{key}", value[key], out)
    elif isinstance(value, (list, tuple)):
        out.append((prefix, ", ".join(clean(v) for v in value) if value else "-"))
    elif value is None or value == "":
        out.append((prefix, "-"))
    else:
        out.append((prefix, clean(value, keep_newlines=True)))


def attribute_lines(item: UserFeedback) -> list[tuple[str, str]]:
    """Every attribute of ``item`` as (dotted name, safe text) pairs, the important ones first."""
    data = item.to_json()
    for key, value in item.raw.items():  # what another server adds beyond the known attributes
        data.setdefault(str(key), value)
    ordered = [key for key in _SHOW_FIRST if key in data]
    ordered += sorted(key for key in data if key not in _SHOW_FIRST and key != "id")
    out: list[tuple[str, str]] = []
    for key in ordered:
        _flatten(key, data[key], out)
    return out


def event_summary(event: Mapping[str, Any]) -> str:
    """An error event in one line: ``Type: value`` (else its title or message)."""
    metadata = event.get("metadata") if isinstance(event.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    kind = metadata.get("type")
    value = metadata.get("value")
    if not kind:
        entries = event.get("entries")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, Mapping) and entry.get("type") == "exception":
                data = entry.get("data")
                values = data.get("values") if isinstance(data, Mapping) else None
                last = values[-1] if isinstance(values, list) and values else None
                last = last if isinstance(last, Mapping) else {}
                kind, value = last.get("type"), last.get("value")
    if kind:
        return f"{kind}: {value}" if value else str(kind)
    return str(event.get("title") or event.get("message") or "(no message)")


def cmd_show(api: FeedbackApi, args: argparse.Namespace) -> int:
    """``sentry-feedback show ID``: every attribute, the attachments and the linked error."""
    from ..api import ApiError, NotFound

    item = api.get(args.id, project=args.project)
    project = args.project or item.project
    attachments: list[FeedbackAttachment] | None
    try:
        attachments = api.attachments(item.id, project=project)
        attachment_problem = ""
    except ApiError as exc:
        attachments, attachment_problem = None, describe_api_error(exc)
    event: Mapping[str, Any] | None = None
    event_problem = ""
    if item.error_ids:
        try:
            event = api.event(item.error_ids[0], project=project)
        except NotFound:
            event_problem = "not found on the server"
        except ApiError as exc:
            event_problem = f"could not be fetched: {describe_api_error(exc)}"
    if args.json:
        document = {
            "feedback": dict(item.raw) if item.raw else item.to_json(),
            "attachments": None if attachments is None else [_attachment_json(a) for a in attachments],
            "error": event,
        }
        print(json.dumps(document, default=_json_default, indent=2))
        return 0
    style = Style.for_stream(sys.stdout)
    print(style.bold(f"feedback {clean(item.id)}"))
    pairs = attribute_lines(item)
    width = max((len(name) for name, _ in pairs), default=0) + 1
    for name, text in pairs:
        lines = text.split("\n")
        value = style.status(lines[0]) if name == "status" else lines[0]
        print(f"  {name + ':':<{width}} {value}")
        for more in lines[1:]:
            print(f"  {'':<{width}} {more}")
    if attachments is None:
        print(f"attachments: unavailable ({attachment_problem})")
    else:
        print(style.bold(f"attachments ({len(attachments)})") + ("" if attachments else ": none"))
        for att in attachments:
            kind = clean(att.mimetype or "?")
            print(f"  {clean(att.name)}  {kind}  {format_size(att.size)}  (id {clean(att.id)})")
    if not item.error_ids:
        print("linked error: none")
    elif event is None:
        print(f"linked error {clean(item.error_ids[0])}: {event_problem}")
    else:
        print(f"linked error {clean(item.error_ids[0])}: {excerpt(event_summary(event), 300)}")
    return 0


def _attachment_json(att: FeedbackAttachment) -> dict[str, Any]:
    return {
        "id": att.id,
        "name": att.name,
        "mimetype": att.mimetype,
        "size": att.size,
        "sha1": att.sha1,
        "type": att.type,
        "dateCreated": att.date_created.isoformat() if att.date_created else None,
    }


_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_FORBIDDEN_CHARS = set('<>:"/\\|?*')


def safe_filename(name: str, fallback: str) -> str:
    """A file name for ``name`` that stays inside its folder on any OS: no separators, no controls, no ``..``."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    chars = [
        "_" if ch in _FORBIDDEN_CHARS or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in base
    ]
    base = "".join(chars).strip().strip(".").strip()
    if not base:
        return fallback
    if base.split(".", 1)[0].upper() in _RESERVED:
        base = "_" + base
    while len(base.encode("utf-8")) > 200:  # file systems allow 255 bytes; keep room for "-N"
        stem, dot, ext = base.rpartition(".")
        base = (stem[:-1] + dot + ext) if dot and len(ext) <= 16 and stem else base[:-1]
    return base


def _unique(folder: Path, name: str, taken: set[str]) -> Path:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    candidate, n = name, 1
    while candidate.lower() in taken or os.path.lexists(folder / candidate):
        candidate = f"{stem}-{n}{dot}{ext}"
        n += 1
    taken.add(candidate.lower())
    return folder / candidate


def cmd_download(api: FeedbackApi, args: argparse.Namespace) -> int:
    """``sentry-feedback download ID``: save the feedback's attachments into ``--to`` (default: ./ID)."""
    attachments = api.attachments(args.id, project=args.project)
    folder = Path(args.to if args.to is not None else args.id)
    if not attachments:
        print(f"feedback {args.id} has no attachments", file=sys.stderr)
        return 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {clean(folder)}: {clean(exc.strerror or exc)}") from None
    root = folder.resolve()
    taken: set[str] = set()
    for att in attachments:
        target = _unique(folder, safe_filename(att.name, f"attachment-{safe_filename(att.id, 'unnamed')}"), taken)
        if target.resolve().parent != root:  # pragma: no cover - safe_filename makes this impossible
            raise CliError(f"refusing to write {clean(att.name)!r} outside {clean(folder)}")
        try:
            saved = api.download_to(args.id, att, target, project=args.project)
            size = saved.stat().st_size
        except OSError as exc:
            raise CliError(f"cannot write {clean(target)}: {clean(exc.strerror or exc)}") from None
        print(f"saved {clean(saved)} ({format_size(size)})")
    return 0
