r"""Parse the ``query`` parameter of the User Feedback REST API: Sentry's search syntax.

:func:`parse_query` turns a query into a :class:`Query` of terms that must all match; it knows
nothing about storage. Terms are separated by whitespace: words and ``"quoted phrases"``
(:class:`FreeText`); ``key:value``, ``key:"a b"``, ``key:*pay*``, ``!key:value``,
``key:!=value``, ``key:[a, "b c"]``, ``timestamp:>=2023-09-28``, ``timestamp:-24h``,
``count:>2k`` and ``tags[key]:value`` (:class:`Filter`); ``has:key`` and ``!has:key``
(:class:`Has`). In values ``\*`` is a literal asterisk, ``\"`` a quote and ``\\`` a backslash.
Keys of :data:`FIELDS` and :data:`ALIASES` are fields, any other key is a tag. All terms must match:
``AND`` and ``OR`` are refused and parentheses are plain text. A malformed query raises
:class:`QuerySyntaxError`, and nothing else does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import groupby
from types import MappingProxyType
from typing import Literal, TypeAlias, cast

__all__ = [
    "ALIASES",
    "FIELDS",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "DateTime",
    "Filter",
    "FreeText",
    "Has",
    "Number",
    "Operator",
    "Pattern",
    "Query",
    "QuerySyntaxError",
    "RelativeTime",
    "Term",
    "Text",
    "TextList",
    "Value",
    "parse_query",
]

MAX_QUERY_LENGTH = 4096
"""The longest query accepted, in characters."""

MAX_TERMS = 100
"""The most terms a query may have; each free word counts as one."""

Operator: TypeAlias = Literal["=", ">", ">=", "<", "<=", "IN"]
"""A filter's operator; ``!=`` and ``NOT IN`` are ``=`` and ``IN`` with ``negated`` set."""

_Kind: TypeAlias = Literal["text", "date", "exists"]
_Unit: TypeAlias = Literal["s", "m", "h", "d", "w"]
_TEXT_FIELDS = (
    ("status", "message", "contact_email", "name", "url", "environment", "release", "dist", "platform", "level"),
    (
        "user.id",
        "user.email",
        "user.username",
        "user.ip",
        "user.display_name",
        "browser.name",
        "browser.version",
        "os.name",
        "os.version",
    ),
    ("device.brand", "device.family", "device.model", "device.name", "locale.lang", "locale.timezone"),
    ("sdk.name", "sdk.version", "trace", "id"),
)
FIELDS: Mapping[str, _Kind] = MappingProxyType(
    {**{name: "text" for group in _TEXT_FIELDS for name in group}, "timestamp": "date", "error": "exists"}
)
"""Fields by kind: ``text`` (compared as text), ``date`` (``timestamp``) or ``exists`` (``has:error``
only: linked to an error). Any other key is a tag."""

ALIASES: Mapping[str, str] = MappingProxyType({"email": "contact_email"})
"""Other names accepted for fields: alias -> field name."""

_OPERATORS: dict[str, Operator] = {"=": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEY = re.compile(r"[A-Za-z0-9_.\-]*")
_TAG_NAME = re.compile(r"[A-Za-z0-9_.:\-]*")
_OPERATOR = re.compile(r"[<>=!]+")
_NUMBER = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?)([kmb]?)")
_RELATIVE = re.compile(r"[+-]([0-9]{1,8})([smhdw])")  # 8 digits of weeks fit in a timedelta
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?(Z|[+-][0-9]{2}:[0-5][0-9])?)?"
)
_STRAY = 'text without a stray "]" (put it in quotes to search for it)'


class QuerySyntaxError(ValueError):
    """A malformed query: ``position`` is the 0-based index of the problem (at most the query's
    length), ``expected`` says what should have been there."""

    def __init__(self, position: int, expected: str) -> None:
        super().__init__(f"Invalid query at position {position}: expected {expected}")
        self.position = position
        self.expected = expected


@dataclass(frozen=True)
class Text:
    """An exact text value, escapes resolved (it may hold a literal ``*``)."""

    text: str


@dataclass(frozen=True)
class Pattern:
    r"""A wildcard value: ``parts`` are the literal texts around each ``*`` (two or more).

    ``*pay*`` is ``Pattern(("", "pay", ""))``; an escaped ``\*`` stays a ``*`` in its part.
    """

    parts: tuple[str, ...]


@dataclass(frozen=True)
class Number:
    """A number a tag is compared with (``2k`` is 2000.0)."""

    value: float


@dataclass(frozen=True)
class DateTime:
    """A point in time in UTC; ``date_only`` when the query gave no time (with ``=``: that whole day)."""

    value: datetime
    date_only: bool = False


@dataclass(frozen=True)
class RelativeTime:
    """``amount`` ``unit`` (s, m, h, d or w) before "now", which the caller supplies.

    ``timestamp:-24h`` is the filter ``>=`` 24 hours ago, ``timestamp:+24h`` the filter ``<=``.
    """

    amount: int
    unit: _Unit

    @property
    def delta(self) -> timedelta:
        """How long before "now"."""
        return timedelta(seconds=self.amount * _UNIT_SECONDS[self.unit])

    def resolve(self, now: datetime) -> datetime:
        """The point in time meant, seen from ``now`` (the earliest datetime when out of range)."""
        try:
            return now - self.delta
        except OverflowError:
            return datetime.min.replace(tzinfo=now.tzinfo)


@dataclass(frozen=True)
class TextList:
    """The exact values of ``key:[a, b]`` (operator ``IN``)."""

    items: tuple[str, ...]


Value: TypeAlias = Text | Pattern | Number | DateTime | RelativeTime | TextList
"""The value of a :class:`Filter`."""


@dataclass(frozen=True)
class FreeText:
    """A quoted phrase, or consecutive unquoted words joined by single spaces, that the message
    must contain, ignoring case. Words are taken literally; in phrases ``\\"`` and ``\\\\`` are escapes."""

    text: str


@dataclass(frozen=True)
class Filter:
    """``key`` compared with ``value`` by ``operator``; the filter must not match when ``negated``.

    ``key`` is a name of :data:`FIELDS` (aliases resolved) or, when ``tag`` is true, a tag name.
    ``value`` is a :class:`Text` or :class:`Pattern` with ``=``, a :class:`TextList` with ``IN``,
    a :class:`DateTime` or :class:`RelativeTime` for ``timestamp``, and a :class:`Number` when a
    tag is compared with ``>``, ``>=``, ``<`` or ``<=``.
    """

    key: str
    operator: Operator
    value: Value
    negated: bool = False
    tag: bool = False


@dataclass(frozen=True)
class Has:
    """``has:key``: the field or tag ``key`` has a value (has none when ``negated``)."""

    key: str
    negated: bool = False
    tag: bool = False


Term: TypeAlias = FreeText | Filter | Has
"""A term of a :class:`Query`."""


@dataclass(frozen=True)
class Query:
    """A parsed query: all its terms must match (no terms match everything)."""

    terms: tuple[Term, ...] = ()


def parse_query(text: str) -> Query:
    """Parse a search query; raise :class:`QuerySyntaxError` (and nothing else) when it is malformed."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(MAX_QUERY_LENGTH, f"a query of at most {MAX_QUERY_LENGTH} characters")
    return _Parser(text).parse()


def _span_end(pattern: re.Pattern[str], text: str, position: int) -> int:
    match = pattern.match(text, position)
    return match.end() if match else position


def _resolve(name: str, explicit_tag: bool) -> tuple[str, bool]:
    """A key's field name (aliases resolved) or tag name, and whether it is a tag."""
    name = name if explicit_tag else ALIASES.get(name, name)
    return name, explicit_tag or name not in FIELDS


def _parse_datetime(raw: str | None) -> DateTime | None:
    match = _DATE.fullmatch(raw or "")
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) if zone and zone != "Z" else timedelta()
        tz = timezone(-offset if zone and zone[0] == "-" else offset)
        numbers = (int(hour or 0), int(minute or 0), int(second or 0), int((fraction or "0").ljust(6, "0")))
        value = datetime(int(year), int(month), int(day), *numbers, tzinfo=tz)
        return DateTime(value.astimezone(timezone.utc), date_only=hour is None)
    except (ValueError, OverflowError):
        return None


class _Parser:
    """A hand-written scanner, one method per construct and no recursion; ``pos`` is the next character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> Query:
        found: list[Term | str] = []
        while self.skip_space():
            if len(found) == MAX_TERMS:
                raise QuerySyntaxError(self.pos, f"at most {MAX_TERMS} terms")
            found.append(self.term())
        terms: list[Term] = []
        for words, group in groupby(found, lambda term: isinstance(term, str)):
            items = list(group)
            terms += [FreeText(" ".join(map(str, items)))] if words else [t for t in items if not isinstance(t, str)]
        return Query(tuple(terms))

    def skip_space(self) -> bool:
        """Move past whitespace; whether anything is left."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos < len(self.text)

    def end_term(self, after: str) -> None:
        if self.pos < len(self.text) and not self.text[self.pos].isspace():
            stray = self.text[self.pos] == "]"
            raise QuerySyntaxError(self.pos, _STRAY if stray else f"a space or the end of the query after {after}")

    def need_value(self, start: int) -> None:
        if self.pos >= len(self.text) or self.text[self.pos].isspace():
            raise QuerySyntaxError(self.pos, f'a value after "{self.text[start : self.pos]}"')

    def term(self) -> Term | str:
        """The term at ``pos``; an unquoted free word comes back as a ``str`` so that words can join."""
        text, start = self.text, self.pos
        if text[start] == '"':
            phrase = "*".join(self.quoted(in_list=False))
            self.end_term("the closing quote")
            return FreeText(phrase)
        key_at = start + (text[start] == "!")
        name, explicit, end = self.key(key_at)
        if not text.startswith(":", end):
            if explicit:
                raise QuerySyntaxError(end, f'":" after "{text[key_at:end]}"')
            return self.word()
        if not name:
            raise QuerySyntaxError(key_at, 'a field name before ":"')
        self.pos = end + 1
        if name != "has" or explicit:
            return self.filter(start, key_at, *_resolve(name, explicit))
        name, explicit, self.pos = self.key(self.pos)
        if not name:
            raise QuerySyntaxError(end + 1, f'a field name after "{text[start : end + 1]}"')
        self.end_term(f'"{text[start : self.pos]}"')
        key, tag = _resolve(name, explicit)
        return Has(key, start != key_at, tag)

    def key(self, at: int) -> tuple[str, bool, int]:
        """The key at ``at`` (``tags[name]`` or a plain name): name, whether it is explicitly a tag, end."""
        if not self.text.startswith("tags[", at):
            end = _span_end(_KEY, self.text, at)
            return self.text[at:end], False, end
        begin = at + len("tags[")
        end = _span_end(_TAG_NAME, self.text, begin)
        if end == begin:
            raise QuerySyntaxError(begin, 'a tag name after "tags["')
        if end >= len(self.text) or self.text[end] != "]":
            raise QuerySyntaxError(end, '"]" after the tag name (tag names use letters, digits and _ . : -)')
        return self.text[begin:end], True, end + 1

    def word(self) -> str:
        text, start = self.text, self.pos
        while self.pos < len(text) and not text[self.pos].isspace():
            if text[self.pos] == "]":
                raise QuerySyntaxError(self.pos, _STRAY)
            self.pos += 1
        if text[start : self.pos] in ("AND", "OR"):
            expected = f'a filter or a word, not "{text[start : self.pos]}" (all terms must match; quote it to find it)'
            raise QuerySyntaxError(start, expected)
        return text[start : self.pos]

    def filter(self, start: int, key_at: int, key: str, tag: bool) -> Filter:
        text, negated, kind = self.text, start != key_at, "tag" if tag else FIELDS[key]
        if kind == "exists":
            raise QuerySyntaxError(key_at, f'"has:{key}" ("{key}" can only be used with has:)')
        self.need_value(start)
        op, op_at = "=", self.pos
        if text[op_at] in "<>=" or text.startswith("!=", op_at):
            op = text[op_at : _span_end(_OPERATOR, text, op_at)]
            if op not in _OPERATORS and op != "!=":
                raise QuerySyntaxError(op_at, f'one of the operators =, !=, >, >=, <, <= instead of "{op}"')
            self.pos += len(op)
            self.need_value(start)
        if op == "!=" and negated:
            raise QuerySyntaxError(op_at, 'a value without "!=" after a negated key (a double negation)')
        negated, op = negated or op == "!=", "=" if op == "!=" else op
        if op != "=" and kind == "text":
            expected = f'a value without "{op}" ("{key}" is text; only timestamps and numbers can be compared)'
            raise QuerySyntaxError(op_at, expected)
        value_at = self.pos
        if text[value_at] == "[":
            if op != "=" or kind == "date":
                raise QuerySyntaxError(value_at, f'a single value after "{text[start:value_at]}", not a list')
            items = self.list_items()
            self.end_term('"]"')
            return Filter(key, "IN", TextList(items), negated, tag)
        parts = self.quoted(in_list=False) if text[value_at] == '"' else self.scan(quoted=False, in_list=False)
        self.end_term("the closing quote")
        raw = parts[0] if len(parts) == 1 else None
        if kind == "date":
            return Filter(key, *self.time_value(op, raw, value_at), negated)
        if op != "=":
            return Filter(key, _OPERATORS[op], self.number(raw, value_at, start), negated, tag)
        return Filter(key, "=", Text(raw) if raw is not None else Pattern(tuple(parts)), negated, tag)

    def time_value(self, op: str, raw: str | None, at: int) -> tuple[Operator, DateTime | RelativeTime]:
        if raw is None or raw[:1] not in ("+", "-"):
            when = _parse_datetime(raw)
            if when is None:
                raise QuerySyntaxError(at, "an ISO 8601 date or datetime such as 2023-09-28 or 2023-09-28T14:10:34Z")
            return _OPERATORS[op], when
        match = _RELATIVE.fullmatch(raw)
        if op != "=" and raw[0] == "+":
            raise QuerySyntaxError(at, f'a date or a time ago such as -24h after "{op}"')
        if match is None:
            raise QuerySyntaxError(at, "a relative time such as -24h or +7d (up to 8 digits; units s, m, h, d, w)")
        relative = RelativeTime(int(match[1]), cast(_Unit, match[2]))
        return _OPERATORS[op if op != "=" else ">=" if raw[0] == "-" else "<="], relative

    def number(self, raw: str | None, at: int, start: int) -> Number:
        match = _NUMBER.fullmatch(raw or "")
        if match is None:
            raise QuerySyntaxError(at, f'a number after "{self.text[start:at]}" (only numbers and timestamps compare)')
        value = float(match[1]) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}[match[2]]
        if not math.isfinite(value):
            raise QuerySyntaxError(at, "a smaller number")
        return Number(value)

    def quoted(self, *, in_list: bool) -> list[str]:
        open_at = self.pos
        self.pos += 1
        parts = self.scan(quoted=True, in_list=in_list)
        if self.pos >= len(self.text):
            raise QuerySyntaxError(open_at, 'a closing quote (") for this quote')
        self.pos += 1
        return parts

    def scan(self, *, quoted: bool, in_list: bool) -> list[str]:
        """The characters of a value up to its end, escapes resolved, split at unescaped wildcards."""
        text, index, parts, chars = self.text, self.pos, list[str](), list[str]()
        while index < len(text):
            char = text[index]
            if (char == '"') if quoted else (char.isspace() or (in_list and char in ",]")):
                break
            if char == "]" and not quoted:
                raise QuerySyntaxError(index, _STRAY)
            if char == "\\" and text[index + 1 : index + 2] in ("\\", "*", '"'):
                chars.append(text[index + 1])
                index += 1
            elif char == "*" and in_list:
                raise QuerySyntaxError(index, 'a value without wildcards inside a list (write \\* for a "*")')
            elif char == "*":
                parts.append("".join(chars))
                chars.clear()
            else:
                chars.append(char)
            index += 1
        self.pos = index
        return [*parts, "".join(chars)]

    def list_items(self) -> tuple[str, ...]:
        text, open_at, items = self.text, self.pos, list[str]()
        while True:
            self.pos += 1
            self.skip_space()
            if self.pos < len(text) and text[self.pos] in ",]":
                raise QuerySyntaxError(self.pos, "a value in the list")
            if self.pos < len(text):
                quoted = text[self.pos] == '"'
                items.append((self.quoted(in_list=True) if quoted else self.scan(quoted=False, in_list=True))[0])
                self.skip_space()
            if self.pos >= len(text):
                raise QuerySyntaxError(open_at, 'a closing "]" for this list')
            if text[self.pos] == "]":
                self.pos += 1
                return tuple(items)
            if text[self.pos] != ",":
                raise QuerySyntaxError(self.pos, '"," or "]" after a value in the list')
