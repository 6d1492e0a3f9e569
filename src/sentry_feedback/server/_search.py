r"""Turn a parsed search :class:`~._query.Query` into SQL over the ``feedback`` table.

:func:`compile_query` gives a boolean SQL expression and its parameters, to put in a
``WHERE`` clause of a query ``FROM feedback`` (see :meth:`FeedbackStore.search`). Values
are always bound with ``?``; only SQL written in this module (column names, constant JSON
paths) is ever part of the text.

Each field of :data:`~._query.FIELDS` is read where :func:`._items.feedback_item` reads the
attribute of the same name: a column of the table or a ``json_extract`` of the stored event
(``data``). Any other key is a tag, looked up in the ``tags`` column with ``json_each`` (the
key is a bound parameter, so any key is safe). The rules, as in Sentry:

- text equality is case-sensitive; a wildcard :class:`~._query.Pattern` is a ``LIKE``
  (ASCII case-insensitive) with ``%``, ``_`` and ``\`` of its literal parts escaped;
- free text is a case-insensitive substring of the message (Unicode case folding: ``CAFÉ`` finds ``café``);
- a negated filter also matches feedback where the value is absent;
- ``has:key`` means present and not empty; ``has:error`` means linked to an error event;
- timestamps compare with the ``timestamp`` column (Unix seconds); a date-only value with
  ``=`` means that whole UTC day;
- a :class:`~._query.Number` compares values that look like numbers, numerically.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

from ._query import (
    FIELDS,
    DateTime,
    Filter,
    FreeText,
    Has,
    Number,
    Pattern,
    Query,
    RelativeTime,
    Term,
    Text,
    TextList,
    Value,
)

__all__ = ["FIELD_SQL", "compile_query"]

_SQL = tuple[str, list[object]]
_Builder = Callable[[str], _SQL]


def _json(column: str, path: str) -> str:
    """The text at constant ``path`` of JSON ``column`` (a number as its text, anything else NULL)."""
    return (
        f"(CASE WHEN json_type({column}, '{path}') IN ('text', 'integer', 'real')"
        f" THEN CAST(json_extract({column}, '{path}') AS TEXT) END)"
    )


_COLUMNS = ("status", "message", "contact_email", "name", "url", "environment", "release", "dist", "platform")
_DATA_PATHS = {
    "level": "$.level",
    "user.id": "$.user.id",
    "user.email": "$.user.email",
    "user.username": "$.user.username",
    "browser.name": "$.contexts.browser.name",
    "browser.version": "$.contexts.browser.version",
    "os.name": "$.contexts.os.name",
    "os.version": "$.contexts.os.version",
    "device.brand": "$.contexts.device.brand",
    "device.family": "$.contexts.device.family",
    "device.model": "$.contexts.device.model",
    "device.name": "$.contexts.device.name",
    "locale.lang": "$.contexts.culture.locale",
    "locale.timezone": "$.contexts.culture.timezone",
}

FIELD_SQL: Mapping[str, str] = MappingProxyType(
    {
        **{name: name for name in _COLUMNS},
        **{name: _json("data", path) for name, path in _DATA_PATHS.items()},
        # The browser SDKs' "{{auto}}" placeholder is no address (the item shows null).
        "user.ip": f"NULLIF({_json('data', '$.user.ip_address')}, '{{{{auto}}}}')",
        # As the item shows it: the user's name, else the name typed in the feedback form.
        "user.display_name": f"COALESCE({_json('data', '$.user.name')}, name)",
        "sdk.name": _json("sdk", "$.name"),
        "sdk.version": _json("sdk", "$.version"),
        "trace": "trace_id",
        "id": "event_id",
        "timestamp": "timestamp",
        "error": "associated_event_id",
    }
)
"""The SQL expression each field of :data:`~._query.FIELDS` is read from."""

_ID_FIELDS = frozenset({"id", "trace"})  # compared as normalized ids (32 lowercase hex digits)
#: A tag condition, over the event's own tags: an object (one value per key) or a list of
#: ``[key, value]`` pairs (a key may repeat: ``tags[it]:me`` finds ``[["it", "me"], ["it", "you"]]``).
_TAG = (
    "EXISTS (SELECT 1 FROM json_each(feedback.data, '$.tags')"
    " WHERE (CASE WHEN type = 'array' THEN json_extract(value, '$[0]') ELSE key END) = ? AND {})"
)
_TAG_VALUE = (
    "(CASE WHEN type = 'array' THEN CAST(json_extract(value, '$[1]') AS TEXT)"
    " WHEN type IN ('text', 'integer', 'real') THEN CAST(value AS TEXT) END)"
)
_NUMERIC = "({0} NOT GLOB '*[^0-9.eE+-]*' AND {0} GLOB '*[0-9]*' AND CAST({0} AS REAL) {1} ?)"
_DAY = timedelta(days=1)


def compile_query(query: Query, *, now: float) -> tuple[str, list[object]]:
    """A SQL boolean expression over ``feedback`` matching ``query``, and its parameters.

    ``now`` (Unix seconds) resolves relative times such as ``timestamp:-24h``. An empty query
    gives ``"1"``. Raises :class:`ValueError` for a term :func:`~._query.parse_query` never makes
    (an unknown field, or a value that does not suit its operator).
    """
    if not query.terms:
        return "1", []
    moment = datetime.fromtimestamp(now, timezone.utc)
    sql: list[str] = []
    params: list[object] = []
    for term in query.terms:
        text, values = _term(term, moment)
        sql.append(f"({text})")
        params += values
    return " AND ".join(sql), params


def _term(term: Term, now: datetime) -> _SQL:
    if isinstance(term, FreeText):
        return "instr(casefold(message), ?) > 0", [term.text.casefold()]
    if isinstance(term, Has):
        return _condition(term.key, term.tag, term.negated, lambda e: (f"{e} IS NOT NULL AND {e} != ''", []))
    if isinstance(term, Filter):
        value, operator, key = term.value, term.operator, term.key
        return _condition(key, term.tag, term.negated, lambda e: _compare(e, operator, value, key, now))
    raise ValueError(f"not a search term: {term!r}")


def _condition(key: str, tag: bool, negated: bool, build: _Builder) -> _SQL:
    """``build``'s condition on the field or tag ``key``; when negated, absent values match."""
    if tag:
        sql, params = build(_TAG_VALUE)
        return ("NOT " if negated else "") + _TAG.format(sql), [key, *params]
    if key not in FIELD_SQL or key not in FIELDS:
        raise ValueError(f"unknown search field {key!r}")
    sql, params = build(FIELD_SQL[key])
    return (f"NOT COALESCE({sql}, 0)" if negated else sql), params


def _compare(expr: str, operator: str, value: Value, key: str, now: datetime) -> _SQL:
    """``expr operator value``; NULL (not a match) when ``expr`` is NULL."""
    if isinstance(value, Text) and operator == "=":
        text = _normalized_id(value.text) if key in _ID_FIELDS else value.text
        return f"{expr} = ?", [text]
    if isinstance(value, Pattern) and operator == "=":
        return f"{expr} LIKE ? ESCAPE '\\'", ["%".join(map(_escape_like, value.parts))]
    if isinstance(value, TextList) and operator == "IN":
        if not value.items:
            return "0", []
        items = [_normalized_id(item) if key in _ID_FIELDS else item for item in value.items]
        return f"{expr} IN ({', '.join('?' * len(items))})", list(items)
    if isinstance(value, Number) and operator in ("<", "<=", ">", ">="):
        return _NUMERIC.format(expr, operator), [value.value]
    if isinstance(value, (DateTime, RelativeTime)) and operator != "IN":
        when = value.resolve(now) if isinstance(value, RelativeTime) else value.value
        if isinstance(value, DateTime) and value.date_only and operator == "=":
            return f"{expr} >= ? AND {expr} < ?", [when.timestamp(), _plus_day(when)]
        return f"{expr} {operator} ?", [when.timestamp()]
    raise ValueError(f"cannot compare {key!r} with {operator} {value!r}")


def _plus_day(when: datetime) -> float:
    try:
        return (when + _DAY).timestamp()
    except OverflowError:
        return float("inf")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _normalized_id(text: str) -> str:
    """32 lowercase hex digits for a UUID (as the store keeps event ids), other text unchanged."""
    try:
        return uuid.UUID(text.strip()).hex
    except ValueError:
        return text
