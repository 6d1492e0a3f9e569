"""The browse endpoint's parameters, cursors and paging headers (seed 003, Sentry's conventions).

:func:`parse_listing` checks every parameter and gives a :class:`Listing` or raises
:class:`~._http.Reject` with a 400 whose ``detail`` names the parameter and what it takes.
Cursors are opaque to clients; ours hold the sort key of the item a page starts after
(``"<key>:<row id>:<is_prev>"``), so pages have neither duplicates nor gaps while new
feedback arrives. A cursor whose key is a plain integer (``"0:30:0"``, Sentry's offset
cursors) means that offset.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ._config import ServerConfig
from ._http import Answer, Reject
from ._items import ITEM_KEYS, parse_datetime
from ._query import QuerySyntaxError, parse_query
from ._search import compile_query

__all__ = ["EXTENSION_KEYS", "Listing", "link_header", "parse_listing"]

#: Item attributes our server adds to the seed's: the project's slug and id, the contact
#: name and how many attachments came with the feedback.
EXTENSION_KEYS = ("project", "project_id", "name", "attachment_count")
SORTS = ("-timestamp", "timestamp", "-projectId", "projectId")
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10
DEFAULT_PERIOD = "7d"
_MAX_OFFSET = 10**9
_SINGLE = ("sort", "statsPeriod", "start", "end", "per_page", "offset", "cursor", "query", "queryReferrer")
_PERIOD = re.compile(r"([1-9][0-9]{0,9})([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INT = re.compile(r"[0-9]{1,10}")
_FLOAT = r"-?(?:[0-9]+\.[0-9]*(?:e[+-]?[0-9]+)?|[0-9]+e[+-]?[0-9]+|inf)"
_KEY_CURSOR = re.compile(rf"(?:(?P<project>[0-9]{{1,18}}),)?(?P<ts>{_FLOAT}):(?P<id>[0-9]{{1,18}}):(?P<prev>[01])")
_OFFSET_CURSOR = re.compile(r"(?P<value>[0-9]{1,10}):(?P<offset>[0-9]{1,10}):(?P<prev>[01])")


@dataclass(frozen=True)
class Listing:
    """A checked browse request: what to select, in which order, which page."""

    where: str
    params: list[object]
    projects: list[str] | None
    environments: list[str] | None
    start: float | None
    end: float | None
    sort: str
    per_page: int
    offset: int
    after: tuple[object, ...] | None
    before: tuple[object, ...] | None
    fields: tuple[str, ...] | None


def parse_listing(query: Mapping[str, list[str]], config: ServerConfig, *, now: float) -> Listing:
    """Check the browse parameters; :class:`Reject` (400) naming the first bad one."""
    for name in _SINGLE:
        if len(query.get(name, [])) > 1:
            raise _bad(f"{name} may be given only once")

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    given_sort = one("sort")
    sort = "-timestamp" if given_sort is None else given_sort
    if sort not in SORTS:
        raise _bad(f"Invalid sort {sort!r}: use one of {', '.join(SORTS)}")
    per_page = _integer(one("per_page"), "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    offset = _integer(one("offset"), "offset", 0, 0, _MAX_OFFSET)
    start, end = _period(one("statsPeriod"), one("start"), one("end"), now)
    after = before = None
    cursor = one("cursor")
    if cursor is not None:
        if one("offset") is not None:
            raise _bad("Give cursor or offset, not both")
        offset, after, before = _cursor(cursor, sort)
    fields = None
    if "field" in query:
        known = (*ITEM_KEYS, *EXTENSION_KEYS)
        fields = tuple(dict.fromkeys(query["field"]))
        unknown = [name for name in fields if name not in known]
        if unknown:
            raise _bad(f"Invalid field {unknown[0]!r}: use any of {', '.join(known)}")
    projects = None
    if "project" in query and "-1" not in query["project"]:  # -1: all projects, as in Sentry
        projects = []
        for value in query["project"]:
            project = config.project(value)
            if project is None:
                raise _bad(f"Unknown project {value[:60]!r}")
            projects.append(project.id)
    environments = list(query["environment"]) if "environment" in query else None
    text = one("query") or ""
    try:
        where, params = compile_query(parse_query(text), now=now)
    except QuerySyntaxError as exc:
        raise _bad(str(exc)) from None
    return Listing(where, params, projects, environments, start, end, sort, per_page, offset, after, before, fields)


def cursor_for(key: Sequence[object], *, previous: bool) -> str:
    """The cursor of the page that starts after (``previous``: ends before) the item with ``key``."""
    *project, timestamp, row_id = key
    prefix = f"{project[0]}," if project else ""
    return f"{prefix}{float(timestamp)!r}:{row_id}:{1 if previous else 0}"  # type: ignore[arg-type]


def link_header(
    base_url: str,
    path: str,
    query: Mapping[str, list[str]],
    *,
    previous: str | None,
    next: str | None,
    offset: int,
    per_page: int,
) -> str:
    """Sentry's ``Link`` header: ``rel="previous"`` and ``rel="next"``, each with ``results`` and ``cursor``."""
    kept = [(name, value) for name, values in query.items() if name not in ("cursor", "offset") for value in values]
    links = []
    for rel, cursor, fallback in (
        ("previous", previous, "0:0:1"),
        ("next", next, f"0:{offset + per_page}:0"),
    ):
        value = cursor or fallback
        target = urllib.parse.quote(path, safe="/") + "?" + urllib.parse.urlencode([*kept, ("cursor", value)])
        results = "true" if cursor else "false"
        links.append(f'<{base_url}{target}>; rel="{rel}"; results="{results}"; cursor="{value}"')
    return ", ".join(links)


def _bad(detail: str) -> Reject:
    return Reject(Answer.error(400, detail))


def _integer(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    value = int(text) if _INT.fullmatch(text.strip()) else None
    if value is None or not low <= value <= high:
        raise _bad(f"Invalid {name} {text[:40]!r}: an integer from {low} to {high}")
    return value


def _period(period: str | None, start: str | None, end: str | None, now: float) -> tuple[float | None, float | None]:
    if period is not None and (start is not None or end is not None):
        raise _bad("Give statsPeriod or start and end, not both")
    if start is not None or end is not None:
        if start is None or end is None:
            raise _bad("start and end must be given together")
        begins, ends = _datetime(start, "start"), _datetime(end, "end")
        if begins >= ends:
            raise _bad("start must be before end")
        return begins.timestamp(), ends.timestamp()
    match = _PERIOD.fullmatch(DEFAULT_PERIOD if period is None else period)
    if match is None:
        shown = (period or "")[:40]
        raise _bad(f"Invalid statsPeriod {shown!r}: a positive integer with an optional unit s, m, h, d or w")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return now - seconds, None


def _datetime(text: str, name: str) -> datetime:
    parsed = parse_datetime(text) if re.match(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}", text) else None
    if parsed is None:
        raise _bad(f"Invalid {name} {text[:40]!r}: an ISO 8601 date and time, e.g. 2024-05-01T12:00:00Z")
    return parsed.astimezone(timezone.utc)


def _cursor(text: str, sort: str) -> tuple[int, tuple[object, ...] | None, tuple[object, ...] | None]:
    """``(offset, after, before)`` for a cursor; a 400 when it is not one of ours (or not for this sort)."""
    match = _OFFSET_CURSOR.fullmatch(text)
    if match is not None:
        return min(int(match.group("offset")), _MAX_OFFSET), None, None
    match = _KEY_CURSOR.fullmatch(text)
    by_project = sort.endswith("projectId")
    if match is None or (match.group("project") is not None) != by_project:
        raise _bad(f"Invalid cursor {text[:80]!r}: use the cursor of a Link header of this listing")
    key: tuple[Any, ...] = (float(match.group("ts")), int(match.group("id")))
    if by_project:
        key = (int(match.group("project")), *key)
    return (0, None, key) if match.group("prev") == "1" else (0, key, None)
