"""The search-query parser of the User Feedback API: valid queries, errors, and properties."""

from __future__ import annotations

import pickle
import time
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_feedback.server._query import (
    ALIASES,
    FIELDS,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    DateTime,
    Filter,
    FreeText,
    Has,
    Number,
    Pattern,
    Query,
    QuerySyntaxError,
    RelativeTime,
    Term,
    Text,
    TextList,
    parse_query,
)

UTC = timezone.utc


def text(key: str, value: str, *, negated: bool = False, tag: bool = False) -> Filter:
    return Filter(key, "=", Text(value), negated, tag)


def date(year: int, month: int, day: int, *time: int, date_only: bool = False) -> DateTime:
    hour, minute, second, microsecond = (*time, 0, 0, 0, 0)[:4]
    return DateTime(datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC), date_only)


VALID: list[tuple[str, tuple[Term, ...]]] = [
    # Whitespace and free text.
    ("", ()),
    ("  \t\n ", ()),
    ("hello", (FreeText("hello"),)),
    ("  hello \t  world  ", (FreeText("hello world"),)),
    ("a\u3000b\u00a0c", (FreeText("a b c"),)),
    ('"a quoted  phrase"', (FreeText("a quoted  phrase"),)),
    ('say "a \\"quote\\" \\\\ *" now', (FreeText("say"), FreeText('a "quote" \\ *'), FreeText("now"))),
    ('""', (FreeText(""),)),
    ('"AND" and or', (FreeText("AND"), FreeText("and or"))),
    ("!foo (bar) C:\\x", (FreeText("!foo (bar)"), text("C", "\\x", tag=True))),
    ("日本語 café", (FreeText("日本語 café"),)),
    # Free text mixed with filters, in any order.
    (
        'crash status:unresolved "pay now" again !has:error more words',
        (
            FreeText("crash"),
            text("status", "unresolved"),
            FreeText("pay now"),
            FreeText("again"),
            Has("error", negated=True),
            FreeText("more words"),
        ),
    ),
    ("status:resolved\tenvironment:prod  x", (text("status", "resolved"), text("environment", "prod"), FreeText("x"))),
    # key:value, negations and operators = / !=.
    ("status:resolved", (text("status", "resolved"),)),
    ("!status:resolved", (text("status", "resolved", negated=True),)),
    ("status:!=resolved", (text("status", "resolved", negated=True),)),
    ("status:=resolved", (text("status", "resolved"),)),
    ("status:!x", (text("status", "!x"),)),
    ("key::value", (text("key", ":value", tag=True),)),
    ("url:https://example.com/a?b=c#d", (text("url", "https://example.com/a?b=c#d"),)),
    ('message:a"b', (text("message", 'a"b'),)),
    ("message:café", (text("message", "café"),)),
    ("message:XXL", (text("message", "XXL"),)),  # a value may start with any letter (not an operator)
    # Aliases and every field.
    ("email:a@example.com", (text("contact_email", "a@example.com"),)),
    ("!contact_email:a@example.com", (text("contact_email", "a@example.com", negated=True),)),
    (
        "name:Jane dist:abc release:v@1.3 platform:javascript level:info trace:fbb4 id:1ffe",
        tuple(
            text(key, value)
            for key, value in [
                ("name", "Jane"),
                ("dist", "abc"),
                ("release", "v@1.3"),
                ("platform", "javascript"),
                ("level", "info"),
                ("trace", "fbb4"),
                ("id", "1ffe"),
            ]
        ),
    ),
    (
        "user.id:42 user.email:j@x.io user.username:jane user.ip:127.0.0.1",
        (
            text("user.id", "42"),
            text("user.email", "j@x.io"),
            text("user.username", "jane"),
            text("user.ip", "127.0.0.1"),
        ),
    ),
    (
        "browser.name:Chrome browser.version:103 os.name:iOS os.version:16.2",
        (
            text("browser.name", "Chrome"),
            text("browser.version", "103"),
            text("os.name", "iOS"),
            text("os.version", "16.2"),
        ),
    ),
    (
        "device.brand:Apple device.family:iPhone device.model:11 device.name:iPhone_11",
        (
            text("device.brand", "Apple"),
            text("device.family", "iPhone"),
            text("device.model", "11"),
            text("device.name", "iPhone_11"),
        ),
    ),
    (
        "locale.lang:en locale.timezone:UTC+1 sdk.name:sentry.javascript.react sdk.version:6.18.1",
        (
            text("locale.lang", "en"),
            text("locale.timezone", "UTC+1"),
            text("sdk.name", "sentry.javascript.react"),
            text("sdk.version", "6.18.1"),
        ),
    ),
    # Quoted values and escapes.
    ('message:"pay now"', (text("message", "pay now"),)),
    ('message:""', (text("message", ""),)),
    ('message:"say \\"hi\\""', (text("message", 'say "hi"'),)),
    ('message:"a\\\\"', (text("message", "a\\"),)),
    ("message:C:\\path\\n", (text("message", "C:\\path\\n"),)),
    ('message:"a ] [ , b"', (text("message", "a ] [ , b"),)),
    # Wildcards.
    ("message:*pay*", (Filter("message", "=", Pattern(("", "pay", ""))),)),
    ("message:pay\\*now", (text("message", "pay*now"),)),
    ("message:\\\\*", (Filter("message", "=", Pattern(("\\", ""))),)),
    ('message:"*pay now*"', (Filter("message", "=", Pattern(("", "pay now", ""))),)),
    ("!url:*/checkout/*", (Filter("url", "=", Pattern(("", "/checkout/", "")), negated=True),)),
    ("release:1.*.3\\*", (Filter("release", "=", Pattern(("1.", ".3*"))),)),
    # Lists.
    ("environment:[production, staging]", (Filter("environment", "IN", TextList(("production", "staging"))),)),
    ("environment:[ a ,b ]", (Filter("environment", "IN", TextList(("a", "b"))),)),
    ('release:["1.0 beta", 2.0, ""]', (Filter("release", "IN", TextList(("1.0 beta", "2.0", ""))),)),
    ("!environment:[a]", (Filter("environment", "IN", TextList(("a",)), negated=True),)),
    ("environment:!=[a]", (Filter("environment", "IN", TextList(("a",)), negated=True),)),
    ("level:[\\*, a[b]", (Filter("level", "IN", TextList(("*", "a[b"))),)),
    ("tags[os]:[a, b]", (Filter("os", "IN", TextList(("a", "b")), tag=True),)),
    ("release:[XL, aXb]", (Filter("release", "IN", TextList(("XL", "aXb"))),)),
    # has: and !has:.
    ("has:user.email", (Has("user.email"),)),
    ("!has:email", (Has("contact_email", negated=True),)),
    ("has:error", (Has("error"),)),
    ("has:flavor", (Has("flavor", tag=True),)),
    ("has:tags[environment]", (Has("environment", tag=True),)),
    ("!has:tags[a:b]", (Has("a:b", negated=True, tag=True),)),
    # Tags: unknown keys and tags[...].
    ("flavor:vanilla", (text("flavor", "vanilla", tag=True),)),
    ("tags[browser]:Firefox", (text("browser", "Firefox", tag=True),)),
    ("!tags[browser]:Firefox", (text("browser", "Firefox", negated=True, tag=True),)),
    ("tags[environment]:prod", (text("environment", "prod", tag=True),)),
    ("tags[email]:x tags[has]:y", (text("email", "x", tag=True), text("has", "y", tag=True))),
    ("tags[a:b.c-d_e]:v", (text("a:b.c-d_e", "v", tag=True),)),
    ("tags[size]:*k", (Filter("size", "=", Pattern(("", "k")), tag=True),)),
    ("http://x", (text("http", "//x", tag=True),)),
    # Numbers (tags only).
    ("count:>2", (Filter("count", ">", Number(2.0), tag=True),)),
    ("!count:<=1.5k", (Filter("count", "<=", Number(1500.0), negated=True, tag=True),)),
    (
        "count:>=-3 n:<2m m:<1b",
        (
            Filter("count", ">=", Number(-3.0), tag=True),
            Filter("n", "<", Number(2e6), tag=True),
            Filter("m", "<", Number(1e9), tag=True),
        ),
    ),
    ("tags[count]:<0.25", (Filter("count", "<", Number(0.25), tag=True),)),
    ("count:5", (text("count", "5", tag=True),)),
    # Timestamps.
    ("timestamp:2023-09-28", (Filter("timestamp", "=", date(2023, 9, 28, date_only=True)),)),
    ("timestamp:>2023-09-28", (Filter("timestamp", ">", date(2023, 9, 28, date_only=True)),)),
    ("timestamp:<=2023-09-28T14:10:34", (Filter("timestamp", "<=", date(2023, 9, 28, 14, 10, 34)),)),
    ("timestamp:<2023-09-28T14:10:34.954Z", (Filter("timestamp", "<", date(2023, 9, 28, 14, 10, 34, 954000)),)),
    ("timestamp:>=2023-09-28T16:10:34+02:00", (Filter("timestamp", ">=", date(2023, 9, 28, 14, 10, 34)),)),
    ("timestamp:>2023-09-28T00:30-01:30", (Filter("timestamp", ">", date(2023, 9, 28, 2, 0)),)),
    ('!timestamp:"2023-09-28"', (Filter("timestamp", "=", date(2023, 9, 28, date_only=True), negated=True),)),
    ("timestamp:!=2023-09-28T10:00:00Z", (Filter("timestamp", "=", date(2023, 9, 28, 10), negated=True),)),
    ("timestamp:-24h", (Filter("timestamp", ">=", RelativeTime(24, "h")),)),
    ("timestamp:+7d", (Filter("timestamp", "<=", RelativeTime(7, "d")),)),
    ("!timestamp:-30m", (Filter("timestamp", ">=", RelativeTime(30, "m"), negated=True),)),
    (
        "timestamp:<-2w timestamp:>=-90s",
        (Filter("timestamp", "<", RelativeTime(2, "w")), Filter("timestamp", ">=", RelativeTime(90, "s"))),
    ),
    ("tags[timestamp]:-24h", (text("timestamp", "-24h", tag=True),)),
]

INVALID: list[tuple[str, int, str]] = [
    # A key without a value.
    ("status:", 7, 'a value after "status:"'),
    ("status: resolved", 7, 'a value after "status:"'),
    ("x !status:", 10, 'a value after "!status:"'),
    ("timestamp:>", 11, 'a value after "timestamp:>"'),
    ("tags[x]:", 8, 'a value after "tags[x]:"'),
    # Empty keys.
    (":value", 0, 'a field name before ":"'),
    ("a !:b", 3, 'a field name before ":"'),
    # Unknown operators.
    ("status:=>x", 7, 'one of the operators =, !=, >, >=, <, <= instead of "=>"'),
    ("timestamp:>>1", 10, 'instead of ">>"'),
    ("count:<>5", 6, 'instead of "<>"'),
    ("status:!==x", 7, 'instead of "!=="'),
    ("!status:!=x", 8, "double negation"),
    # Comparisons on fields that cannot be compared.
    ("message:>a", 8, 'a value without ">" ("message" is text; only timestamps and numbers can be compared)'),
    ("email:<=x", 6, '"contact_email" is text'),
    ("count:>abc", 7, 'a number after "count:>"'),
    ("count:>1e5", 7, "a number"),
    ("count:>" + "9" * 400, 7, "a smaller number"),
    ("count:>*", 7, "a number"),
    ("count:>[1]", 7, "not a list"),
    ("error:x", 0, '"has:error" ("error" can only be used with has:)'),
    # Unterminated quotes and lists.
    ('"unterminated', 0, 'a closing quote (") for this quote'),
    ('message:"abc', 8, "a closing quote"),
    ('k:[a, "b]', 6, "a closing quote"),
    ("key:[a, b", 4, 'a closing "]" for this list'),
    ("key:[", 4, 'a closing "]"'),
    ("key:[a b]", 7, '"," or "]" after a value in the list'),
    ("key:[]", 5, "a value in the list"),
    ("key:[a,,b]", 7, "a value in the list"),
    ("key:[a, ]", 8, "a value in the list"),
    # Wildcards inside lists.
    ("key:[a*]", 6, 'a value without wildcards inside a list (write \\* for a "*")'),
    ('key:[a, "*b"]', 9, "without wildcards"),
    # Dates and relative times.
    ("timestamp:2023-02-30", 10, "an ISO 8601 date or datetime such as 2023-09-28 or 2023-09-28T14:10:34Z"),
    ("timestamp:2023-9-1", 10, "an ISO 8601 date"),
    ("timestamp:yesterday", 10, "an ISO 8601 date"),
    ("timestamp:2023-09-28T25:00:00", 10, "an ISO 8601 date"),
    ("timestamp:2023-09-28T10:00:00+24:00", 10, "an ISO 8601 date"),
    ("timestamp:0000-01-01", 10, "an ISO 8601 date"),
    ("timestamp:>=0001-01-01T00:00:00+01:00", 12, "an ISO 8601 date"),
    ("timestamp:2023*", 10, "an ISO 8601 date"),
    ("timestamp:[2023-09-28]", 10, 'a single value after "timestamp:", not a list'),
    ("timestamp:-24x", 10, "a relative time such as -24h or +7d"),
    ("timestamp:-h", 10, "a relative time"),
    ("timestamp:-123456789d", 10, "a relative time"),
    ("timestamp:>+7d", 11, 'a date or a time ago such as -24h after ">"'),
    # has: without a key.
    ("has:", 4, 'a field name after "has:"'),
    ("!has: x", 5, 'a field name after "!has:"'),
    ('has:"x"', 4, "a field name"),
    ("has:foo*", 7, 'a space or the end of the query after "has:foo"'),
    # Stray "]" and what follows a quote or a list.
    ("a ]", 2, 'text without a stray "]" (put it in quotes to search for it)'),
    ("key:[a]]", 7, 'stray "]"'),
    ("message:a]", 9, 'stray "]"'),
    ("has:x]", 5, 'stray "]"'),
    ('"a"b', 3, "a space or the end of the query after the closing quote"),
    ('k:"v"w', 5, "after the closing quote"),
    ("k:[a]b", 5, 'a space or the end of the query after "]"'),
    # tags[...].
    ("tags[]:x", 5, 'a tag name after "tags["'),
    ("tags[a b]:x", 6, '"]" after the tag name'),
    ("has:tags[x", 10, '"]" after the tag name'),
    ("tags[x]y", 7, '":" after "tags[x]"'),
    ("!tags[x]", 8, '":" after "tags[x]"'),
    # Boolean operators are not supported: every term must match.
    ("a OR b", 2, 'a filter or a word, not "OR"'),
    ("x AND y", 2, 'not "AND"'),
    # Limits.
    ("a" * (MAX_QUERY_LENGTH + 1), MAX_QUERY_LENGTH, f"a query of at most {MAX_QUERY_LENGTH} characters"),
    (" ".join(["k:v"] * (MAX_TERMS + 1)), 4 * MAX_TERMS, f"at most {MAX_TERMS} terms"),
    ("[" * 4000 + "]" * 96, 4000, 'stray "]"'),
]


@pytest.mark.parametrize(("query", "terms"), VALID)
def test_valid_queries(query: str, terms: tuple[Term, ...]) -> None:
    assert parse_query(query) == Query(terms)


@pytest.mark.parametrize(("query", "position", "expected"), INVALID)
def test_invalid_queries(query: str, position: int, expected: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(query)
    assert info.value.position == position
    assert expected in info.value.expected
    assert str(info.value) == f"Invalid query at position {position}: expected {info.value.expected}"


#: One query for each message, and the whole message: where the problem is and what would fix it.
EXACT: list[tuple[str, int, str]] = [
    ("x !:b", 3, 'a field name before ":"'),
    ("x tags[]:v", 7, 'a tag name after "tags["'),
    ("x tags[a b]:v", 8, '"]" after the tag name (tag names use letters, digits and _ . : -)'),
    ("x count:>", 9, 'a value after "count:>"'),
    ("x status:!=", 11, 'a value after "status:!="'),
    ("x !status:!=v", 10, 'a value without "!=" after a negated key (a double negation)'),
    ("x count:>abc", 9, 'a number after "count:>" (only numbers and timestamps compare)'),
    ("x count:>" + "9" * 400, 9, "a smaller number"),
    ("x timestamp:yesterday", 12, "an ISO 8601 date or datetime such as 2023-09-28 or 2023-09-28T14:10:34Z"),
    ("x timestamp:-24x", 12, "a relative time such as -24h or +7d (up to 8 digits; units s, m, h, d, w)"),
    ('x message:"abc', 10, 'a closing quote (") for this quote'),
    ("x k:[a*]", 6, 'a value without wildcards inside a list (write \\* for a "*")'),
    ("x k:[a,,b]", 7, "a value in the list"),
    ("x k:[a, b", 4, 'a closing "]" for this list'),
    ("x k:[a b]", 7, '"," or "]" after a value in the list'),
]


@pytest.mark.parametrize(("query", "position", "expected"), EXACT)
def test_error_messages(query: str, position: int, expected: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(query)
    assert (info.value.position, info.value.expected) == (position, expected)


def test_datetimes_are_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        for query in ("timestamp:2023-09-28T14:10:34+02:00", "timestamp:2023-09-28", "timestamp:>2023-09-28T14:10"):
            term = parse_query(query).terms[0]
            assert isinstance(term, Filter) and isinstance(term.value, DateTime)
            assert term.value.value.tzinfo == UTC, query
    finally:
        monkeypatch.undo()
        time.tzset()


def test_tables_cover_enough_cases() -> None:
    assert len(VALID) >= 40
    assert len(INVALID) >= 20


def test_error_message_names_position_and_expectation() -> None:
    with pytest.raises(QuerySyntaxError, match=r'^Invalid query at position 12: expected a value after "status:"$'):
        parse_query("pay  status:")
    error = QuerySyntaxError(3, "a value")
    assert isinstance(error, ValueError)
    assert (error.position, error.expected) == (3, "a value")


def test_limits_are_inclusive() -> None:
    assert parse_query("a" * MAX_QUERY_LENGTH) == Query((FreeText("a" * MAX_QUERY_LENGTH),))
    assert len(parse_query(" ".join(["k:v"] * MAX_TERMS)).terms) == MAX_TERMS
    with pytest.raises(QuerySyntaxError):  # every free word counts, even when words join
        parse_query(" ".join(["w"] * (MAX_TERMS + 1)))


def test_fields_and_aliases() -> None:
    assert FIELDS["timestamp"] == "date"
    assert FIELDS["error"] == "exists"
    assert all(kind == "text" for name, kind in FIELDS.items() if name not in ("timestamp", "error"))
    assert set(ALIASES.values()) <= set(FIELDS)
    with pytest.raises(TypeError):
        FIELDS["flavor"] = "text"  # type: ignore[index]  # the mapping is read-only


def test_relative_time_resolves_against_now() -> None:
    now = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
    assert RelativeTime(24, "h").delta == timedelta(hours=24)
    assert RelativeTime(2, "w").resolve(now) == datetime(2024, 1, 17, 12, 0, tzinfo=UTC)
    assert RelativeTime(90, "s").resolve(now) == datetime(2024, 1, 31, 11, 58, 30, tzinfo=UTC)
    largest = parse_query("timestamp:-99999999w").terms[0]
    assert isinstance(largest, Filter) and isinstance(largest.value, RelativeTime)
    assert largest.value.resolve(now) == datetime.min.replace(tzinfo=UTC)


def test_datetimes_are_utc() -> None:
    term = parse_query("timestamp:>2023-09-28T14:10:34.5-07:00").terms[0]
    assert isinstance(term, Filter) and isinstance(term.value, DateTime)
    assert term.value.value == datetime(2023, 9, 28, 21, 10, 34, 500000, tzinfo=UTC)
    assert term.value.value.utcoffset() == timedelta(0)
    assert not term.value.date_only


def test_ast_is_immutable_and_hashable() -> None:
    query = parse_query("status:x !has:error a")
    with pytest.raises(FrozenInstanceError):
        query.terms = ()  # type: ignore[misc]  # frozen
    with pytest.raises(FrozenInstanceError):
        query.terms[0].key = "y"  # type: ignore[misc,union-attr]  # frozen
    assert hash(query) == hash(parse_query("status:x  !has:error   a"))
    assert pickle.loads(pickle.dumps(query)) == query


# A renderer for the round-trip property: every value and phrase quoted, every tag as tags[...].
def _quote(value: str, special: str = '\\"') -> str:
    return '"' + "".join("\\" + c if c in special else c for c in value) + '"'


def _render_value(term: Filter) -> str:
    value, op = term.value, "" if term.operator in ("=", "IN") else term.operator
    if isinstance(value, Text):
        return op + _quote(value.text, '\\"*')
    if isinstance(value, Pattern):
        return op + '"' + "*".join(_quote(part, '\\"*')[1:-1] for part in value.parts) + '"'
    if isinstance(value, TextList):
        return "[" + ", ".join(_quote(item, '\\"*') for item in value.items) + "]"
    if isinstance(value, Number):
        return op + format(Decimal(repr(value.value)), "f")
    if isinstance(value, RelativeTime):
        return {">=": "-", "<=": "+"}.get(term.operator, term.operator + "-") + f"{value.amount}{value.unit}"
    v = value.value
    time = "" if value.date_only else f"T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    return f"{op}{v.year:04d}-{v.month:02d}-{v.day:02d}{time}"


def render(query: Query) -> str:
    rendered = []
    for term in query.terms:
        if isinstance(term, FreeText):
            rendered.append(_quote(term.text))
            continue
        key = f"tags[{term.key}]" if term.tag else term.key
        body = f"has:{key}" if isinstance(term, Has) else f"{key}:{_render_value(term)}"
        rendered.append(("!" if term.negated else "") + body)
    return " ".join(rendered)


# Query-like text: terms built from keys, operators and values (often valid), plus loose fragments.
FRAGMENTS = [
    fragment
    for group in (
        ("status", "message", "email", "user.email", "timestamp", "error", "has", "tags[", "tags[x]", "tags[a:b]"),
        ("]", "[", ",", ":", "!", "=", "!=", ">", ">=", "<", "<=", "*", "\\*", "\\", "\\\\", '\\"', '"', "(", ")"),
        ("-24h", "+7d", "-0s", "2023-09-28", "T14:10:34", ".5", "Z", "+02:00", "1.5k", "-3", "AND", "OR"),
        (" ", "  ", "\t", "\n", "\u3000", "é", "日本", "a b", "\x00"),
    )
    for fragment in group
]
SNIPPETS = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3))
WHOLE_VALUES = ("resolved", "*pay*", "a\\*b", "-24h", "+7d", "2023-09-28", "2023-09-28T14:10:34.5+02:00", "1.5k", "-3")
VALUES = st.one_of(st.sampled_from(WHOLE_VALUES), st.lists(SNIPPETS, max_size=4).map("".join))
QUOTED = VALUES.map(lambda value: '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
LISTS = st.lists(st.one_of(VALUES, QUOTED), min_size=1, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
CLEAN_ITEMS = st.sampled_from(("a", '"b c"', "\\*", '""', "é", '"x,]"'))
CLEAN_LISTS = st.lists(CLEAN_ITEMS, min_size=1, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
KEYS = st.sampled_from(("status", "message", "email", "has", "flavor", "tags[x]", "tags[a:b]", "error", ""))
NEGATION = st.sampled_from(("", "!"))
COMPARISONS = st.sampled_from(("", "=", "!=", ">", ">=", "<", "<="))
TIMES = st.sampled_from(("-24h", "+7d", "-0s", "2023-09-28", "2023-09-28T14:10", "2023-09-28T14:10:34.5+02:00", "now"))
NUMBERS = st.sampled_from(("2", "-3", "1.5k", "0.25", "2m", "1b", "x"))
TERMS = st.one_of(
    st.builds("{}{}:{}{}".format, NEGATION, KEYS, COMPARISONS, st.one_of(VALUES, QUOTED, LISTS)),
    st.builds("{}timestamp:{}{}".format, NEGATION, COMPARISONS, TIMES),
    st.builds("{}count:{}{}".format, NEGATION, COMPARISONS, NUMBERS),
    st.builds("{}has:{}".format, NEGATION, KEYS),
    st.builds(
        "{}{}:{}".format, NEGATION, KEYS, st.one_of(CLEAN_LISTS, st.sampled_from(("*pay*", '"*a b*"', "a\\*b*")))
    ),
    VALUES,
    QUOTED,
)
SEPARATORS = st.sampled_from((" ", " ", " ", "  ", "\t", "\u3000", ""))
QUERIES = st.lists(st.tuples(st.one_of(TERMS, TERMS, SNIPPETS), SEPARATORS), max_size=6).map(
    lambda parts: "".join(term + separator for term, separator in parts)
)
EXAMPLES = settings(max_examples=300, derandomize=True, database=None, deadline=None)


def _parse_or_error(query: str) -> Query | None:
    """The parsed query, or None after checking the syntax error (any other exception fails the test)."""
    try:
        return parse_query(query)
    except QuerySyntaxError as raised:
        error = raised
    assert 0 <= error.position <= len(query)
    assert error.expected
    assert str(error).startswith(f"Invalid query at position {error.position}: expected ")
    return None


@EXAMPLES
@given(st.text())
def test_arbitrary_text_parses_or_raises_a_syntax_error(query: str) -> None:
    result = _parse_or_error(query)
    assert result is None or isinstance(result, Query)


@EXAMPLES
@given(QUERIES)
def test_query_like_text_parses_or_raises_a_syntax_error(query: str) -> None:
    result = _parse_or_error(query)
    assert result is None or isinstance(result, Query)


@EXAMPLES
@given(QUERIES)
def test_rendered_query_parses_back_to_the_same_ast(query: str) -> None:
    parsed = _parse_or_error(query)
    if parsed is not None and len(render(parsed)) <= MAX_QUERY_LENGTH:
        assert parse_query(render(parsed)) == parsed


def test_round_trip_of_every_valid_row() -> None:
    for query, terms in VALID:
        assert parse_query(render(Query(terms))) == Query(terms), query
