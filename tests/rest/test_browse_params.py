"""Every parameter of ``GET /organizations/<org>/user-feedback/``, good values and bad (a 400 with a detail)."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from sentry_feedback.server import Project

from .conftest import (
    ALL_TIME,
    DAY,
    ERROR_1,
    EXTENSIONS,
    HOUR,
    INDEX,
    MOBILE,
    SEED_ATTRIBUTES,
    TRACE,
    WEB,
    Api,
    Catalog,
    assert_bad_request,
    assert_seed_item,
)

WEEK = 7 * DAY
EVERYTHING = {"statsPeriod": ALL_TIME, "per_page": "100"}


def iso(seconds: float, offset: timedelta = timedelta(0), *, z: bool = True) -> str:
    text = datetime.fromtimestamp(seconds, timezone(offset)).isoformat()
    return text.replace("+00:00", "Z") if z else text


def numbers(catalog: Catalog, ids: list[str]) -> list[int]:
    by_id = {row.id: row.number for row in catalog.rows}
    return [by_id[feedback_id] for feedback_id in ids]


def test_the_defaults_are_the_last_7_days_newest_first_10_a_page(catalog: Catalog, capi: Api) -> None:
    recent = catalog.within(WEEK)
    assert 10 < len(recent) < len(catalog.rows)
    reply = capi.browse()
    assert reply.ids == catalog.order(recent, "-timestamp")[:10]
    for item in capi.browse(EVERYTHING).items:  # every item has the seed's attributes, whatever it holds
        assert_seed_item(item)
    assert reply.hits == len(recent)
    assert capi.browse({"sort": "-timestamp", "statsPeriod": "7d", "per_page": "10", "offset": "0"}).data == reply.data


# -- field -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [["id"], ["id", "message", "user"], ["status", "status"], ["project", "attachment_count", "timestamp"]],
)
def test_field_returns_only_those_attributes(capi: Api, fields: list[str]) -> None:
    reply = capi.browse({"field": fields})
    assert reply.items
    for item in reply.items:
        assert set(item) == set(fields)
    full = capi.browse().items
    assert [{name: item[name] for name in fields} for item in full] == reply.items


def test_every_attribute_of_the_seed_and_every_extension_is_a_field(capi: Api) -> None:
    names = [path for path in SEED_ATTRIBUTES if "." not in path] + list(EXTENSIONS)
    reply = capi.browse({"field": names})
    assert reply.items == capi.browse().items


@pytest.mark.parametrize("bad", ["nope", "", "user.email", "ID", "id,message", "' OR 1=1 --"])
def test_an_unknown_field_is_a_400_naming_it(capi: Api, bad: str) -> None:
    detail = assert_bad_request(capi.get(INDEX, {"field": ["id", bad]}), "field")
    assert repr(bad) in detail or bad in detail


# -- environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environments", [["production"], ["staging"], ["production", "staging"], ["dev", "nope"], ["nope"], ["Production"]]
)
def test_environment_keeps_those_environments(catalog: Catalog, capi: Api, environments: list[str]) -> None:
    reply = capi.browse({**EVERYTHING, "environment": environments})
    rows = [row for row in catalog.rows if row.environment in environments]
    assert reply.ids == catalog.order(rows, "-timestamp")
    assert reply.hits == len(rows)


# -- project -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("projects", "expected"),
    [
        (["web"], [WEB]),
        ([WEB.id], [WEB]),
        (["mobile"], [MOBILE]),
        (["web", "mobile"], [WEB, MOBILE]),
        ([WEB.id, "mobile"], [WEB, MOBILE]),
        (["web", "web"], [WEB]),
        (["-1"], [WEB, MOBILE]),
    ],
)
def test_project_by_slug_or_id(catalog: Catalog, capi: Api, projects: list[str], expected: list[Project]) -> None:
    reply = capi.browse({**EVERYTHING, "project": projects})
    rows = [row for row in catalog.rows if row.project in expected]
    assert reply.ids == catalog.order(rows, "-timestamp")
    assert {item["project"] for item in reply.items} == {p.slug for p in expected}


@pytest.mark.parametrize("bad", ["nope", "99", "", "Web", "2 ", "' OR '1'='1"])
def test_an_unknown_project_is_a_400(capi: Api, bad: str) -> None:
    assert_bad_request(capi.get(INDEX, {"project": ["web", bad]}), "project")


# -- sort ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["-timestamp", "timestamp", "projectId", "-projectId"])
def test_each_sort_order_with_ties_broken_by_arrival(catalog: Catalog, capi: Api, sort: str) -> None:
    """Feedback with equal timestamps (in one project and across both) keep one order, the exact reverse for
    ``timestamp``; projectId orders by project, then newest first."""
    expected = catalog.order(catalog.rows, sort)
    reply = capi.browse({**EVERYTHING, "sort": sort})
    assert reply.ids == expected, (numbers(catalog, reply.ids), numbers(catalog, expected))
    stamps = [item["timestamp"] for item in reply.items]
    assert len(set(stamps)) < len(stamps)  # there are ties to break
    if sort in ("projectId", "-projectId"):
        ids = [int(item["project_id"]) for item in reply.items]
        assert ids == sorted(ids, reverse=sort.startswith("-"))
    for per_page in ("1", "2", "5"):  # the order does not depend on the page size
        walked: list[str] = []
        params = {**EVERYTHING, "sort": sort, "per_page": per_page}
        while True:
            page = capi.browse(params)
            walked += page.ids
            if not page.links["next"].results:
                break
            params["cursor"] = page.links["next"].cursor
        assert walked == expected


def test_sort_timestamp_is_the_exact_reverse_of_minus_timestamp(capi: Api) -> None:
    newest = capi.browse({**EVERYTHING, "sort": "-timestamp"}).ids
    assert capi.browse({**EVERYTHING, "sort": "timestamp"}).ids == newest[::-1]


@pytest.mark.parametrize(
    "bad", ["", "id", "-id", "Timestamp", "project_id", "projectid", "timestamp,-id", " timestamp", "--timestamp"]
)
def test_any_other_sort_is_a_400(capi: Api, bad: str) -> None:
    assert_bad_request(capi.get(INDEX, {"sort": bad}), "sort")


# -- statsPeriod ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "seconds"),
    [
        ("300", 300),
        ("300s", 300),
        ("5m", 300),
        ("1000", 1000),
        ("90m", 90 * 60),
        ("4h", 4 * HOUR),
        ("1d", DAY),
        ("30h", 30 * HOUR),
        ("1w", WEEK),
        ("7d", WEEK),
        ("2w", 2 * WEEK),
        ("3w", 3 * WEEK),
        (ALL_TIME, 10**12),
    ],
)
def test_stats_period_units(catalog: Catalog, capi: Api, period: str, seconds: int) -> None:
    reply = capi.browse({"statsPeriod": period, "per_page": "100"})
    assert reply.ids == catalog.order(catalog.within(seconds), "-timestamp")
    assert reply.hits == len(catalog.within(seconds))


def test_the_default_stats_period_leaves_out_older_feedback(catalog: Catalog, capi: Api) -> None:
    listed = set(capi.browse({"per_page": "100"}).ids)
    older = {row.id for row in catalog.rows if row.age > WEEK}
    assert older and not listed & older
    assert listed == {row.id for row in catalog.within(WEEK)}


@pytest.mark.parametrize(
    "bad", ["0", "0d", "-1d", "1y", "7 d", "", " ", "d", "1.5h", "7dd", "+7d", "7D", "1e3", "07d", "\uff17d", "7d;"]
)
def test_a_bad_stats_period_is_a_400(capi: Api, bad: str) -> None:
    assert_bad_request(capi.get(INDEX, {"statsPeriod": bad}), "statsPeriod")


# -- start and end -------------------------------------------------------------------------------


def test_start_is_inclusive_and_end_exclusive(catalog: Catalog, capi: Api) -> None:
    start, end = catalog.timestamp(catalog.row(3)), catalog.timestamp(catalog.row(2))  # ages 3600 and 600
    reply = capi.browse({"start": iso(start), "end": iso(end)})
    assert reply.ids == [catalog.row(3).id]
    wider = capi.browse({"start": iso(start - 1500), "end": iso(end + 1), "per_page": "100"})
    rows = [row for row in catalog.rows if start - 1500 <= catalog.timestamp(row) < end + 1]
    assert len(rows) == 5
    assert wider.ids == catalog.order(rows, "-timestamp")


def test_start_and_end_in_any_iso_8601_form(catalog: Catalog, capi: Api) -> None:
    start, end = catalog.timestamp(catalog.row(3)) - 1, catalog.timestamp(catalog.row(2))
    expected = capi.browse({"start": iso(start), "end": iso(end)}).ids
    assert expected
    forms = [
        (iso(start, z=False), iso(end, z=False)),  # +00:00
        (iso(start, timedelta(hours=2)), iso(end, timedelta(hours=-5, minutes=-30))),
        (iso(start).rstrip("Z"), iso(end).rstrip("Z")),  # naive: UTC
        (iso(start).replace("Z", ".000Z"), iso(end).replace("Z", ".000000Z")),
    ]
    for begins, ends in forms:
        assert capi.browse({"start": begins, "end": ends}).ids == expected, (begins, ends)


def test_start_and_end_as_dates_reach_years_back(catalog: Catalog, capi: Api) -> None:
    row = catalog.row(10)  # 400 days old
    day = datetime.fromtimestamp(catalog.timestamp(row), timezone.utc).date()
    reply = capi.browse({"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()})
    assert reply.ids == [row.id]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start": "2024-01-01T00:00:00Z"}, "together"),
        ({"end": "2024-01-01T00:00:00Z"}, "together"),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "before"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "before"),
        ({"start": "2024-01-01T00:00:00+01:00", "end": "2023-12-31T23:00:00Z"}, "before"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "statsPeriod": "7d"}, "statsPeriod"),
        ({"start": "2024-01-01T00:00:00Z", "statsPeriod": "7d"}, "statsPeriod"),
        ({"start": "yesterday", "end": "2024-01-02T00:00:00Z"}, "start"),
        ({"start": "2024-01-01T00:00:00Z", "end": "tomorrow"}, "end"),
        ({"start": "2023-02-30T00:00:00Z", "end": "2024-01-02T00:00:00Z"}, "start"),
        ({"start": "2023-08-31T25:00:00Z", "end": "2024-01-02T00:00:00Z"}, "start"),
        ({"start": "2023-08-31T14:10:34+25:00", "end": "2024-01-02T00:00:00Z"}, "start"),
        ({"start": "31/08/2023", "end": "2024-01-02T00:00:00Z"}, "start"),
        ({"start": "", "end": "2024-01-02T00:00:00Z"}, "start"),
        ({"start": "1693490000", "end": "2024-01-02T00:00:00Z"}, "start"),
        ({"start": "2024-01-01T00:00:00Z", "end": "99999-01-01T00:00:00Z"}, "end"),
        ({"start": "0001-01-01T00:00:00+01:00", "end": "2024-01-02T00:00:00Z"}, "start"),
    ],
)
def test_bad_start_and_end_are_a_400(capi: Api, params: dict[str, str], fragment: str) -> None:
    assert_bad_request(capi.get(INDEX, params), fragment)


# -- per_page and offset -------------------------------------------------------------------------


@pytest.mark.parametrize("per_page", [1, 2, 7, 13, 14, 100])
def test_per_page(catalog: Catalog, capi: Api, per_page: int) -> None:
    expected = catalog.order(catalog.within(WEEK), "-timestamp")
    reply = capi.browse({"per_page": str(per_page)})
    assert reply.ids == expected[:per_page]
    assert reply.hits == len(expected)
    assert reply.links["next"].results is (per_page < len(expected))


@pytest.mark.parametrize("bad", ["0", "101", "abc", "-1", "", "1.5", "1e2", "0x10", "99999999999"])
def test_a_bad_per_page_is_a_400(capi: Api, bad: str) -> None:
    assert_bad_request(capi.get(INDEX, {"per_page": bad}), "per_page")


@pytest.mark.parametrize(("offset", "per_page"), [(0, 5), (3, 5), (10, 10), (13, 5), (14, 5), (1000, 10)])
def test_offset(catalog: Catalog, capi: Api, offset: int, per_page: int) -> None:
    expected = catalog.order(catalog.within(WEEK), "-timestamp")
    reply = capi.browse({"offset": str(offset), "per_page": str(per_page)})
    assert reply.ids == expected[offset : offset + per_page]
    assert reply.hits == len(expected)
    links = reply.links
    assert links["next"].results is (offset + per_page < len(expected))
    if reply.items:  # (an empty page past the end has no item to make a previous cursor from)
        assert links["previous"].results is (offset > 0)
    if links["next"].results:  # the next page goes on where this one ends
        following = capi.get(links["next"].url)
        assert following.ids == expected[offset + per_page : offset + 2 * per_page]


@pytest.mark.parametrize("bad", ["-1", "abc", "", "1.5", "99999999999"])
def test_a_bad_offset_is_a_400(capi: Api, bad: str) -> None:
    assert_bad_request(capi.get(INDEX, {"offset": bad}), "offset")


# -- cursor --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cursor", "sort"),
    [
        ("abc", "-timestamp"),
        ("", "-timestamp"),
        ("1:2", "-timestamp"),
        ("0:0:2", "-timestamp"),
        ("x:1:0", "-timestamp"),
        ("1.5:3:0:1", "-timestamp"),
        ("nan:3:0", "-timestamp"),
        ("1.5:3:0", "projectId"),  # a timestamp cursor for a project order
        ("2,1.5:3:0", "-timestamp"),  # a project cursor for a timestamp order
        ("1.5:-3:0", "timestamp"),
        ("' OR 1=1 --", "-timestamp"),
    ],
)
def test_a_garbage_cursor_is_a_400(capi: Api, cursor: str, sort: str) -> None:
    assert_bad_request(capi.get(INDEX, {"cursor": cursor, "sort": sort}), "cursor")


def test_cursor_and_offset_together_are_a_400(capi: Api) -> None:
    cursor = capi.browse({"per_page": "3"}).links["next"].cursor
    assert_bad_request(capi.get(INDEX, {"cursor": cursor, "offset": "3"}), "cursor", "offset")


@pytest.mark.parametrize("name", ["sort", "statsPeriod", "per_page", "offset", "cursor", "query", "queryReferrer"])
def test_a_single_valued_parameter_given_twice_is_a_400(capi: Api, name: str) -> None:
    value = {"sort": "timestamp", "statsPeriod": "1d", "per_page": "5", "offset": "0", "cursor": "0:0:0"}.get(name, "x")
    assert_bad_request(capi.get(INDEX, [(name, value), (name, value)]), name)


# -- the Link header keeps the parameters --------------------------------------------------------


def test_link_urls_are_absolute_and_keep_every_parameter_but_the_page(capi: Api) -> None:
    params = [
        ("field", "id"),
        ("field", "message"),
        ("environment", "production"),
        ("environment", "dev"),
        ("project", "web"),
        ("sort", "timestamp"),
        ("statsPeriod", "14d"),
        ("per_page", "2"),
        ("offset", "2"),
        ("query", "!has:error é"),
        ("queryReferrer", "replayUserFeedback"),
    ]
    reply = capi.browse(params)
    for link in reply.links.values():
        split = urllib.parse.urlsplit(link.url)
        assert f"{split.scheme}://{split.netloc}" == capi.server.url
        assert split.path == "/api/0" + INDEX
        kept = [(name, value) for name, value in urllib.parse.parse_qsl(split.query) if name != "cursor"]
        assert kept == [(name, value) for name, value in params if name != "offset"]


# -- queryReferrer -------------------------------------------------------------------------------


@pytest.mark.parametrize("referrer", ["replayUserFeedback", "", "anything else", "' OR 1=1 --"])
def test_query_referrer_is_accepted_and_changes_nothing(capi: Api, referrer: str) -> None:
    assert capi.browse({"queryReferrer": referrer}).data == capi.browse().data


# -- query ---------------------------------------------------------------------------------------

ALL = set(range(1, 18))
QUERIES: list[tuple[str, set[int]]] = [
    ("", ALL),
    ("   ", ALL),
    ("status:unresolved", ALL - {17}),
    ("status:resolved", {17}),
    ("!status:resolved", ALL - {17}),
    ("status:!=resolved", ALL - {17}),
    ("environment:production", {1, 3, 4, 5, 6, 8, 9, 17}),
    ("environment:[production, staging]", {1, 2, 3, 4, 5, 6, 8, 9, 10, 17}),
    ("!environment:production", {2, 7, 10, 11, 12, 13, 14, 15, 16}),
    ("has:environment", ALL - {7}),
    ("!has:environment", {7}),
    ("message:*pay*", {10}),
    ("pay", {10}),
    ("PAYMENTS", {10}),
    ('"new dashboard"', {1}),
    ("love the", {1}),
    ("love dashboard", set()),  # consecutive words are one phrase
    ("has:error", {1, 8}),
    ("!has:error", ALL - {1, 8}),
    (f"error_ids:{ERROR_1}", set()),  # an unknown key is a tag
    ("!user.email:*@example.com", ALL - {1, 2}),
    ("user.email:bob@example.com", {2}),
    ("tags[page]:checkout", {2}),
    ("page:checkout", {2}),
    ("has:page", {2}),
    ("email:ann@example.com", {1}),
    ("contact_email:bob@example.com", {2}),
    ("name:Ann", {1}),
    ("user.ip:10.0.0.1", {1}),
    ("has:user.ip", {1}),  # {{auto}} is no address
    ("user.username:ann", {1}),
    ("user.id:42", {1}),
    ("browser.name:Firefox", {2}),
    ("browser.name:firefox", set()),  # exact values are case-sensitive
    ("browser.name:chrome*", {1}),  # wildcards are not
    ("browser.version:120.0", {1}),
    ("os.name:Windows", {1}),
    ("device.family:iPhone", {4}),
    ("device.model:11", {4}),
    ("locale.lang:en-US", {1}),
    ("locale.timezone:Europe/Paris", {1}),
    ("sdk.name:sentry.javascript.react", {1}),
    ("release:app@1.0", {1}),
    ("dist:1", {1}),
    ("url:*checkout", {2}),
    ("level:warning", {3}),
    ("level:info", ALL - {3}),
    ("platform:javascript", ALL),
    (f"trace:{TRACE[:8]}-{TRACE[8:12]}-{TRACE[12:16]}-{TRACE[16:20]}-{TRACE[20:]}", {1}),
    (f"id:{5:032x}", {5}),
    (f"id:{5:032X}", {5}),
    (f"id:[{5:032x}, {6:032x}]", {5, 6}),
    (f"!id:{5:032x}", ALL - {5}),
    ("count:>10", {2, 4}),
    ("count:<=3", {1}),
    ("count:>2k", set()),
    ("count:>=0.15k", {4}),
    ("flavor:*van*", {1}),
    ("flavor:50%off", {3}),
    ("flavor:50*", {3}),
    ("flavor:choc_*", {2}),
    ("flavor:*_*", {2}),  # "_" is no LIKE wildcard here
    ("flavor:*%*", {3}),
    ('message:"x\' OR 1=1 --"', {6}),
    ("message:*\\\\*", {5}),  # a literal backslash
    ("message:price_is*", {4}),
    ("message:100%*", {3}),
    ("message:100\\*", set()),  # an escaped "*" is a literal asterisk
    ("tags[it]:you're", {9}),
    ("tags[it]:me", {9}),  # every value of a repeated tag is searchable (the item shows them all)
    ("café", {9}),
    ("CAFÉ RÉSUMÉ", {9}),  # free text ignores case, not only ASCII case
    ("environment:production has:error", {1, 8}),
    ("environment:dev tie", {11, 12, 13, 14, 15, 16}),
    ("timestamp:-90m", {1, 2, 3, 11, 12, 13}),
    ("timestamp:+1d", {5, 6, 7, 8, 9, 10, 14, 15, 16}),
]


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[q or "<empty>" for q, _ in QUERIES])
def test_query_finds_what_it_says(catalog: Catalog, capi: Api, query: str, expected: set[int]) -> None:
    reply = capi.browse({**EVERYTHING, "query": query})
    assert set(numbers(catalog, reply.ids)) == expected
    assert reply.ids == catalog.order([catalog.row(n) for n in expected], "-timestamp")
    assert reply.hits == len(expected)


def test_query_on_absolute_timestamps(catalog: Catalog, capi: Api) -> None:
    ten_days_ago = iso(catalog.now - 10 * DAY)
    newer = capi.browse({**EVERYTHING, "query": f"timestamp:>{ten_days_ago}"})
    assert set(numbers(catalog, newer.ids)) == ALL - {9, 10}
    older = capi.browse({**EVERYTHING, "query": f"timestamp:<{ten_days_ago}"})
    assert set(numbers(catalog, older.ids)) == {9, 10}
    day = datetime.fromtimestamp(catalog.timestamp(catalog.row(10)), timezone.utc).date().isoformat()
    assert numbers(catalog, capi.browse({**EVERYTHING, "query": f"timestamp:{day}"}).ids) == [10]


def test_query_combines_with_the_other_filters(catalog: Catalog, capi: Api) -> None:
    reply = capi.browse({"query": "environment:production", "project": "web", "statsPeriod": "1w"})
    rows = [r for r in catalog.within(WEEK) if r.environment == "production" and r.project == WEB]
    assert reply.ids == catalog.order(rows, "-timestamp")


INVALID_QUERIES: list[tuple[str, int, str]] = [
    ("foo:", 4, 'a value after "foo:"'),
    ('message:"abc', 8, "a closing quote"),
    ("status:>resolved", 7, '"status" is text'),
    ("AND", 0, "all terms must match"),
    ("a OR b", 2, 'not "OR"'),
    ("has:", 4, "a field name after"),
    ("timestamp:yesterday", 10, "ISO 8601"),
    ("tags[", 5, "a tag name"),
    ("tags[a", 6, '"]" after the tag name'),
    ("a ]", 2, 'stray "]"'),
    ("x:[a,", 2, 'a closing "]"'),
    ("x:[a b]", 5, '"," or "]"'),
    ("count:>abc", 7, "a number"),
    ("count:>1e999", 7, "a number"),
    ("error:x", 0, "has:error"),
    ("!status:!=a", 8, "double negation"),
    (":x", 0, "a field name before"),
    ("status:=>a", 7, "one of the operators"),
    ("id:[a,*]", 6, "without wildcards"),
    ("timestamp:[2024-01-01]", 10, "a single value"),
    ("timestamp:+1y", 10, "a relative time"),
    ('message:"a"b', 11, "a space or the end"),
    ("has:error:x", 9, "a space or the end"),
    (" ".join(["w"] * 101), 200, "at most 100 terms"),
    ("x" * 4097, 4096, "at most 4096 characters"),
]


@pytest.mark.parametrize(
    ("query", "position", "expected"), INVALID_QUERIES, ids=[q[:24] for q, _, _ in INVALID_QUERIES]
)
def test_an_invalid_query_is_a_400_naming_the_position_and_what_was_expected(
    capi: Api, query: str, position: int, expected: str
) -> None:
    detail = assert_bad_request(capi.get(INDEX, {"query": query}), f"position {position}", "expected", expected)
    assert detail.startswith("Invalid query")
