"""Tolerant readers of the JSON values a server sends, and ISO 8601 times.

Each reader takes whatever it is given and returns a typed value or ``None`` (or an
empty one); none of them raises.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


_ISO_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?"
)


def _parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 text (no zone means UTC) or Unix seconds as an aware UTC datetime; None if not one."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc) if math.isfinite(value) else None
        if not isinstance(value, str):
            return None
        match = _ISO_DATETIME.fullmatch(value.strip())
        if match is None:
            return None
        year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
        tz = timezone.utc
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            tz = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _format_datetime(moment: datetime) -> str:
    """A datetime as ISO 8601 UTC with ``Z`` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds").replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    """A string as is, a number as its text, anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (builtins.list, tuple)):
        return ()
    return tuple(text for text in map(_text, value) if text is not None)


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 30:
        return int(value.strip())
    return None


def _tags(value: Any) -> Mapping[str, str | tuple[str, ...]]:
    tags: dict[str, str | tuple[str, ...]] = {}
    for key, tag in _obj(value).items():
        if not isinstance(key, str):
            continue
        if isinstance(tag, (builtins.list, tuple)):
            tags[key] = _strings(tag)
        elif (text := _text(tag)) is not None:
            tags[key] = text
        elif isinstance(tag, bool):
            tags[key] = "true" if tag else "false"
    return MappingProxyType(tags)
