from __future__ import annotations

import copy
import doctest
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_feedback import _scrubber
from sentry_feedback._scrubber import (
    DEFAULT_DENYLIST,
    DEFAULT_PII_DENYLIST,
    FILTERED,
    MAX_DEPTH,
    EventScrubber,
)
from sentry_feedback._serialize import dumps
from sentry_feedback.testing import normalize_with_relay

SECRET = "s3cr3t-value"
#: The default denylist as documented, written out here: an entry taken out of the module fails the tests.
EXPECTED_DENYLIST = (
    "*password*",
    "*passwd*",
    "*passphrase*",
    "*secret*",
    "*api_key*",
    "*private_key*",
    "*credential*",
    "*authorization*",
    "*csrf*",
    "*xsrf*",
    "auth",
    "token",
    "session",
    "sessionid",
    "session_key",
    "phpsessid",
    "connect.sid",
    "cookie",
    "cookies",
    "jwt",
    "bearer",
    "otp",
    "pwd",
    "access_key",
    "cvv",
    "cvc",
)
DENIED_WORDS = [entry.strip("*") for entry in EXPECTED_DENYLIST]
PII_WORDS = list(DEFAULT_PII_DENYLIST)


def scrub(event: dict[str, Any], **options: Any) -> list[str]:
    return EventScrubber(**options).scrub_event(event)


def valid_event(**fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "timestamp": 1_700_000_000.0, "platform": "python", **fields}


def frame_event(key: str, variables: dict[str, Any]) -> dict[str, Any]:
    frames = [{"function": f"f{i}", "vars": {"i": i}} for i in range(3)] + [{"function": "g", "vars": variables}]
    return {key: {"values": [{"type": "ValueError", "value": "x", "stacktrace": {"frames": frames}}]}}


# Each place a denied key is scrubbed: (build an event holding {key: value}, read the value back, reported path).
Place = tuple[Callable[[str, Any], dict[str, Any]], Callable[[dict[str, Any], str], Any], Callable[[str], str]]

PLACES: dict[str, Place] = {
    "extra": (
        lambda k, v: {"extra": {k: v, "other": "kept"}},
        lambda e, k: e["extra"][k],
        lambda k: f"extra.{k}",
    ),
    "contexts": (
        lambda k, v: {"contexts": {"db": {k: v, "name": "kept"}}},
        lambda e, k: e["contexts"]["db"][k],
        lambda k: f"contexts.db.{k}",
    ),
    "breadcrumb data": (
        lambda k, v: {"breadcrumbs": {"values": [{"message": "a"}, {"category": "http", "data": {k: v, "n": 1}}]}},
        lambda e, k: e["breadcrumbs"]["values"][1]["data"][k],
        lambda k: f"breadcrumbs.values.1.data.{k}",
    ),
    "request headers": (
        lambda k, v: {"request": {"headers": {k: v, "Accept": "text/html"}}},
        lambda e, k: e["request"]["headers"][k],
        lambda k: f"request.headers.{k}",
    ),
    "request header pairs": (
        lambda k, v: {"request": {"headers": [["Accept", "text/html"], [k, v]]}},
        lambda e, k: e["request"]["headers"][1][1],
        lambda k: f"request.headers.{k}",
    ),
    "request data": (
        lambda k, v: {"request": {"data": {k: v, "q": "shoes"}}},
        lambda e, k: e["request"]["data"][k],
        lambda k: f"request.data.{k}",
    ),
    "request env": (
        lambda k, v: {"request": {"env": {k: v, "SERVER_NAME": "web-1"}}},
        lambda e, k: e["request"]["env"][k],
        lambda k: f"request.env.{k}",
    ),
    "query string": (
        lambda k, v: {"request": {"query_string": f"page=2&{k}={v}&sort=asc"}},
        lambda e, k: e["request"]["query_string"].split("&")[1].partition("=")[2],
        lambda k: f"request.query_string.{k}",
    ),
    "query pairs": (
        lambda k, v: {"request": {"query_string": [["page", "2"], [k, v]]}},
        lambda e, k: e["request"]["query_string"][1][1],
        lambda k: f"request.query_string.{k}",
    ),
    "exception frame vars": (
        lambda k, v: frame_event("exception", {k: v, "count": 3}),
        lambda e, k: e["exception"]["values"][0]["stacktrace"]["frames"][3]["vars"][k],
        lambda k: f"exception.values.0.stacktrace.frames.3.vars.{k}",
    ),
    "thread frame vars": (
        lambda k, v: frame_event("threads", {k: v, "count": 3}),
        lambda e, k: e["threads"]["values"][0]["stacktrace"]["frames"][3]["vars"][k],
        lambda k: f"threads.values.0.stacktrace.frames.3.vars.{k}",
    ),
}


# -- key matching -------------------------------------------------------------------------


@pytest.mark.parametrize("entry", EXPECTED_DENYLIST)
def test_default_denylist_holds_every_expected_entry(entry: str) -> None:
    assert entry in DEFAULT_DENYLIST


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("word", DENIED_WORDS)
def test_every_denied_key_is_filtered_everywhere(place: str, word: str) -> None:
    build, read, path = PLACES[place]
    event = build(word, SECRET)
    before = copy.deepcopy(event)
    assert scrub(event) == [path(word)]
    assert read(event, word) == FILTERED
    assert SECRET not in repr(event)
    # Nothing else changed.
    assert read(before, word) == SECRET
    for other in ("other", "name", "n", "Accept", "q", "SERVER_NAME", "count"):
        assert (other in repr(event)) == (other in repr(before))


@pytest.mark.parametrize("place", PLACES)
def test_a_harmless_key_is_kept_everywhere(place: str) -> None:
    build = PLACES[place][0]
    event = build("username", "ada")
    before = copy.deepcopy(event)
    assert scrub(event) == []
    assert event == before


@pytest.mark.parametrize(
    "key",
    [
        # The names the brief and sentry-python list, in many spellings.
        "password",
        "PASSWORD",
        "Password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "API_KEY",
        "X-Api-Key",
        "x_api_key",
        "x-api-key",
        "apiKey",
        "ApiKey",
        "api.key",
        "api key",
        "auth",
        "Authorization",
        "HTTP_AUTHORIZATION",
        "Proxy-Authorization",
        "credentials",
        "mysql_pwd",
        "privatekey",
        "private_key",
        "privateKey",
        "token",
        "session",
        "sessionid",
        "csrftoken",
        "x_csrftoken",
        "X-CSRF-Token",
        "csrf",
        "_csrf",
        "xsrf",
        "XSRF-TOKEN",
        "_xsrf",
        "cookie",
        "Cookie",
        "set-cookie",
        "Set-Cookie",
        "HTTP_COOKIE",
        "access_token",
        "refresh_token",
        "client_secret",
        "aiohttp_session",
        "user_session",
        "_session",
        "connect.sid",
        "PHPSESSID",
        "JSESSIONID",
        "ASP.NET_SessionId",
        "session_id",
        "session_key",
        # Anywhere-words inside longer keys.
        "db_password",
        "DB_PASSWORD",
        "dbPassword",
        "password_hash",
        "passwordConfirmation",
        "new_password2",
        "stripe_secret_key",
        "SECRET_KEY",
        "secretKey",
        "secrets",
        "aws_secret_access_key",
        "stripe_api_key_live",
        "aws_credentials",
        "gpg_passphrase",
        "authorization_header",
        # End-words at the end of longer keys.
        "user_token",
        "userToken",
        "authToken",
        "authtoken",
        "x-auth-token",
        "id_token",
        "github_token",
        "x-auth",
        "basic_auth",
        "oauth",
        "jwt",
        "bearer",
        "otp",
        "totp",
        "db_pwd",
        "s3_access_key",
        "cvv",
        "card_cvc",
    ],
)
def test_denied_key_variants(key: str) -> None:
    assert EventScrubber().is_denied(key)
    event = {"extra": {key: SECRET}}
    assert scrub(event) == [f"extra.{key}"]
    assert event["extra"][key] == FILTERED


@pytest.mark.parametrize(
    "key",
    [
        "authorized",
        "is_authorized",
        "author",
        "author_name",
        "authentication_backend",
        "tokenizer_name",
        "tokenizer",
        "tokens",
        "max_tokens",
        "prompt_tokens",
        "token_count",
        "token_type",
        "session_count",
        "session_duration",
        "sessions",
        "cookie_name",
        "cookie_max_age",
        "keyboard",
        "cache_key",
        "primary_key",
        "username",
        "email",
        "zip",
        "ipv4_count",
        "description",
        "otp_length",
    ],
)
def test_harmless_keys_are_kept(key: str) -> None:
    assert not EventScrubber().is_denied(key)
    event = {"extra": {key: "kept value"}}
    assert scrub(event) == []
    assert event["extra"][key] == "kept value"


def test_non_string_keys_are_skipped() -> None:
    event: dict[str, Any] = {"extra": {1: "one", None: "none", ("password",): "tuple", "password": "x"}}
    assert scrub(event) == ["extra.password"]
    assert event["extra"][1] == "one"
    assert event["extra"][("password",)] == "tuple"
    assert not EventScrubber().is_denied(1)  # type: ignore[arg-type]


# -- where it does and does not look ----------------------------------------------------


@pytest.mark.parametrize("name", ["feedback", "trace"])
def test_feedback_and_trace_contexts_are_never_touched(name: str) -> None:
    context = {
        "message": "My card 4111 1111 1111 1111 was charged twice, password hunter2",
        "contact_email": "ada@example.com",
        "password": "hunter2",
        "token": "abc",
        "nested": {"secret": "x"},
        "ip_address": "10.0.0.1",
    }
    event = {"contexts": {name: copy.deepcopy(context), "db": {"password": "x"}}}
    assert scrub(event) == ["contexts.db.password"]
    assert event["contexts"][name] == context


def test_tags_are_never_touched() -> None:
    tags = {"password": "x", "token": "y", "card": "4111 1111 1111 1111", "ip_address": "10.0.0.1"}
    event = {"tags": dict(tags), "extra": {"token": "y"}}
    assert scrub(event) == ["extra.token"]
    assert event["tags"] == tags


def test_other_top_level_fields_are_not_touched() -> None:
    event = {
        "message": "password=hunter2 card 4111 1111 1111 1111",
        "logentry": {"message": "token %s", "params": ["4111111111111111"]},
        "fingerprint": ["password"],
        "modules": {"token": "1.0"},
        "sdk": {"name": "x", "version": "1"},
    }
    before = copy.deepcopy(event)
    assert scrub(event) == []
    assert event == before


def test_top_level_stacktrace_frames_are_scrubbed() -> None:
    event = {"stacktrace": {"frames": [{"function": "f", "vars": {"api_key": "k", "x": 1}}]}}
    assert scrub(event) == ["stacktrace.frames.0.vars.api_key"]
    assert event["stacktrace"]["frames"][0]["vars"] == {"api_key": FILTERED, "x": 1}


def test_bare_lists_of_values_are_accepted() -> None:
    event = {
        "breadcrumbs": [{"data": {"token": "t"}}],
        "exception": [{"stacktrace": {"frames": [{"vars": {"password": "p"}}]}}],
    }
    assert scrub(event) == ["breadcrumbs.0.data.token", "exception.0.stacktrace.frames.0.vars.password"]


def test_a_realistic_error_event() -> None:
    event = valid_event(
        level="error",
        extra={"password": "p", "user_id": 7, "note": "paid with 5555-5555-5555-4444 yesterday"},
        contexts={
            "db": {"token": "t", "host": "db-1"},
            "trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16], "token": "kept"},
        },
        breadcrumbs={"values": [{"category": "http", "data": {"auth": "Basic xyz", "url": "/a"}}]},
        request={
            "url": "https://shop.example/checkout?step=2&access_token=abc",
            "method": "POST",
            "headers": {"Authorization": "Bearer abc", "User-Agent": "curl", "X-Forwarded-For": "1.2.3.4"},
            "cookies": {"sessionid": "s", "theme": "dark"},
            "query_string": "a=1&token=x",
            "data": {"card": "4111 1111 1111 1111", "qty": 2},
            "env": {"REMOTE_ADDR": "1.2.3.4", "SERVER_PORT": "443"},
        },
        user={"id": "42", "ip_address": "1.2.3.4", "username": "ada"},
        tags={"token": "kept"},
    )
    event.update(frame_event("exception", {"api_key": "'k'", "self": "<Obj>"}))
    paths = scrub(event)
    assert paths == [
        "extra.password",
        "extra.note",
        "contexts.db.token",
        "breadcrumbs.values.0.data.auth",
        "request.headers.Authorization",
        "request.headers.X-Forwarded-For",
        "request.data.card",
        "request.env.REMOTE_ADDR",
        "request.query_string.token",
        "request.cookies",
        "request.url",
        "exception.values.0.stacktrace.frames.3.vars.api_key",
        "user.ip_address",
    ]
    assert event["extra"] == {"password": FILTERED, "user_id": 7, "note": f"paid with {FILTERED} yesterday"}
    assert event["contexts"]["trace"]["token"] == "kept"
    assert event["tags"] == {"token": "kept"}
    assert event["request"]["cookies"] == {"sessionid": FILTERED, "theme": FILTERED}
    assert event["request"]["url"] == f"https://shop.example/checkout?step=2&access_token={FILTERED}"
    assert event["request"]["query_string"] == f"a=1&token={FILTERED}"
    assert event["request"]["headers"]["User-Agent"] == "curl"
    assert event["user"] == {"id": "42", "username": "ada"}
    # A second run has nothing left to filter and reports nothing twice.
    assert scrub(event) == []
    normalize_with_relay(event)


# -- PII ------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", PII_WORDS)
@pytest.mark.parametrize("place", ["extra", "request headers", "request env", "exception frame vars"])
def test_pii_keys_only_without_send_default_pii(place: str, word: str) -> None:
    build, read, path = PLACES[place]
    event = build(word, "203.0.113.7")
    kept = copy.deepcopy(event)
    assert scrub(kept, send_default_pii=True) == []
    assert read(kept, word) == "203.0.113.7"
    assert scrub(event) == [path(word)]
    assert read(event, word) == FILTERED


@pytest.mark.parametrize(
    "header", ["X-Forwarded-For", "x-real-ip", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "Forwarded"]
)
def test_ip_headers_are_pii(header: str) -> None:
    scrubber = EventScrubber()
    assert scrubber.is_denied(header)
    assert not EventScrubber(send_default_pii=True).is_denied(header)


def test_user_ip_address_is_removed_without_send_default_pii() -> None:
    user = {"id": "1", "email": "ada@example.com", "ip_address": "{{auto}}", "remote_addr": "1.2.3.4"}
    event = valid_event(user=dict(user))
    assert scrub(event) == ["user.ip_address", "user.remote_addr"]
    assert event["user"] == {"id": "1", "email": "ada@example.com"}
    normalize_with_relay(event)

    event = valid_event(user=dict(user))
    assert scrub(event, send_default_pii=True) == []
    assert event["user"] == user


def test_user_only_loses_pii_keys() -> None:
    event = {"user": {"id": "1", "password": "kept", "token": "kept", "data": {"client_ip": "1.2.3.4", "x": 1}}}
    assert scrub(event) == ["user.data.client_ip"]
    assert event["user"] == {"id": "1", "password": "kept", "token": "kept", "data": {"client_ip": FILTERED, "x": 1}}


def test_user_empty_ip_is_left() -> None:
    event: dict[str, Any] = {"user": {"ip_address": None, "remote_addr": ""}}
    assert scrub(event) == []
    assert event["user"] == {"ip_address": None, "remote_addr": ""}


# -- request specifics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        ({"sessionid": "abc", "theme": "dark"}, {"sessionid": FILTERED, "theme": FILTERED}),
        ("sessionid=abc; theme=dark", f"sessionid={FILTERED}; theme={FILTERED}"),
        ([["sessionid", "abc"], ["theme", "dark"]], [["sessionid", FILTERED], ["theme", FILTERED]]),
        ("just-garbage", {}),
        (12345, {}),
    ],
)
def test_request_cookies_are_filtered_as_a_whole(cookies: Any, expected: Any) -> None:
    event = valid_event(request={"url": "https://example.com/", "cookies": cookies})
    assert scrub(event) == ["request.cookies"]
    assert event["request"]["cookies"] == expected
    assert scrub(event) == []
    normalize_with_relay(event)


def test_empty_cookies_are_left() -> None:
    event: dict[str, Any] = {"request": {"cookies": {}, "headers": {"Cookie": ""}}}
    assert scrub(event) == []
    assert event["request"] == {"cookies": {}, "headers": {"Cookie": ""}}


def test_cookies_key_elsewhere_keeps_names() -> None:
    event = valid_event(
        contexts={"response": {"type": "response", "status_code": 200, "cookies": {"sid": "x", "lang": "en"}}},
        extra={"cookies": "a=1; b=2"},
    )
    assert scrub(event) == ["extra.cookies", "contexts.response.cookies"]
    assert event["contexts"]["response"]["cookies"] == {"sid": FILTERED, "lang": FILTERED}
    assert event["extra"]["cookies"] == f"a={FILTERED}; b={FILTERED}"
    normalize_with_relay(event)


@pytest.mark.parametrize(
    ("query", "expected", "paths"),
    [
        ("a=1&token=x", f"a=1&token={FILTERED}", ["request.query_string.token"]),
        ("?token=x&a=1", f"?token={FILTERED}&a=1", ["request.query_string.token"]),
        ("api%5Fkey=x&b", f"api%5Fkey={FILTERED}&b", ["request.query_string.api_key"]),
        ("access_token=&a=1", "access_token=&a=1", []),
        ("a=1&b=2", "a=1&b=2", []),
        ("no-pairs-here", "no-pairs-here", []),
        ("note=4111+1111+1111+1111", f"note={FILTERED}", ["request.query_string.note"]),
        ("note=card+4111%201111%201111%201111+ok", f"note=card+{FILTERED}+ok", ["request.query_string.note"]),
        ("n=4111-1111-1111-1111&x=1", f"n={FILTERED}&x=1", ["request.query_string.n"]),
    ],
)
def test_query_string(query: str, expected: str, paths: list[str]) -> None:
    event = {"request": {"query_string": query}}
    assert scrub(event) == paths
    assert event["request"]["query_string"] == expected


def test_query_string_filtered_twice_reports_once() -> None:
    event = {"request": {"query_string": "token=x", "url": "https://x.example/?token=y#frag"}}
    assert scrub(event) == ["request.query_string.token", "request.url"]
    assert event["request"]["url"] == f"https://x.example/?token={FILTERED}#frag"
    assert scrub(event) == []


def test_request_url_without_sensitive_query_is_kept() -> None:
    event = {"request": {"url": "https://x.example/search?q=shoes&page=2"}}
    assert scrub(event) == []
    assert event["request"]["url"] == "https://x.example/search?q=shoes&page=2"


def test_header_pairs_as_tuples_and_odd_pairs() -> None:
    headers: list[Any] = [("Authorization", "Bearer x"), ("Accept", "*/*"), ["only-one"], [1, "x"], "junk"]
    event = {"request": {"headers": headers}}
    assert scrub(event) == ["request.headers.Authorization"]
    assert event["request"]["headers"][0] == ["Authorization", FILTERED]
    assert event["request"]["headers"][1:] == headers[1:]


def test_request_data_string_and_list() -> None:
    event: dict[str, Any] = {"request": {"data": "raw body with card 4111111111111111"}}
    assert scrub(event) == ["request.data"]
    assert event["request"]["data"] == f"raw body with card {FILTERED}"
    event = {"request": {"data": [{"password": "p"}, "4111111111111111"]}}
    assert scrub(event) == ["request.data.0.password", "request.data.1"]


# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, True, False, "", {}, [], (), FILTERED])
def test_values_that_hide_nothing_are_left_and_not_reported(value: Any) -> None:
    event = {"extra": {"password": value}}
    assert scrub(event) == []
    assert event["extra"]["password"] is value


@pytest.mark.parametrize("value", [0, 123456, 1.5, "x", ["a"], {"a": 1}, ("a",), b"bytes", object()])
def test_any_other_value_of_a_denied_key_is_replaced(value: Any) -> None:
    event = {"extra": {"token": value}}
    assert scrub(event) == ["extra.token"]
    assert event["extra"]["token"] == FILTERED


class NoBoolEquality:
    """Like a numpy array: ``==`` answers with something that refuses to be a bool."""

    def __eq__(self, other: object) -> Any:
        return self

    def __ne__(self, other: object) -> Any:
        return self

    def __bool__(self) -> bool:
        raise ValueError("truth value is ambiguous")

    __hash__ = object.__hash__


def test_objects_with_odd_equality_do_not_break_it() -> None:
    odd = NoBoolEquality()
    event: dict[str, Any] = {
        "extra": {"password": odd, "frame": odd, "cookies": odd},
        "request": {"cookies": {"a": odd}},
        "user": {"ip_address": odd},
    }
    paths = scrub(event)
    assert paths == ["extra.password", "extra.cookies", "request.cookies", "user.ip_address"]
    assert event["extra"]["frame"] is odd


def test_odd_objects_in_every_section_do_not_break_it() -> None:
    odd = NoBoolEquality()
    event: dict[str, Any] = {
        "extra": odd,
        "contexts": {"db": odd, "trace": odd},
        "breadcrumbs": {"values": [odd, {"data": odd}]},
        "request": {"headers": odd, "cookies": odd, "data": odd, "env": odd, "query_string": odd, "url": odd},
        "exception": {"values": [{"stacktrace": {"frames": [{"vars": odd}]}}]},
        "threads": odd,
        "stacktrace": odd,
        "user": {"ip_address": "1.2.3.4", "data": odd},
    }
    assert scrub(event) == ["request.cookies", "user.ip_address"]
    event = {"extra": odd, "contexts": odd, "breadcrumbs": odd, "request": odd, "exception": odd, "user": odd}
    assert scrub(event) == []


# -- credit cards ---------------------------------------------------------------------------

CARDS = [
    "4111111111111111",  # Visa
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4242 4242 4242 4242",
    "4012888888881881",
    "4222222222222",  # Visa, 13 digits
    "5555555555554444",  # Mastercard
    "5105-1051-0510-5100",
    "2223 0031 2200 3222",  # Mastercard 2-series
    "378282246310005",  # Amex
    "3782 822463 10005",
    "3714-496353-98431",
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "30569309025904",  # Diners, 14 digits
    "6759649826438453",  # Maestro
    "6250941006528599",  # UnionPay
    "4000 0000 0000 0000 006",  # Visa, 19 digits
]


@pytest.mark.parametrize("card", CARDS)
def test_credit_cards_are_filtered_inside_text(card: str) -> None:
    event = {"extra": {"note": f"Customer paid with {card}, please refund."}}
    assert scrub(event) == ["extra.note"]
    assert event["extra"]["note"] == f"Customer paid with {FILTERED}, please refund."


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn fails
        "4111 1111 1111 1112",
        "5555-5555-5555-4445",
        "order 9781234567897",  # an ISBN-13 (Luhn aside, 9 is no card network)
        "1700000000000",  # a millisecond timestamp that happens to pass Luhn
        "1700000000000000003",  # a nanosecond timestamp
        "0000000000000000",  # passes Luhn, no network starts with 0
        "8888888888888888",  # passes Luhn, no network starts with 8
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits
        "x41111111111111110",  # a card inside a longer number is not a card
        "2720 9999 9999 9999 0",  # outside Mastercard's 2-series
        "4111 1111  1111 1111",  # two spaces split the run into short pieces
        "4111/1111/1111/1111",
        "phone +1 555 123 4567",
        "2024-01-15 12:30:45.123456",
        "",
    ],
)
def test_numbers_that_are_not_cards_are_kept(text: str) -> None:
    event = {"extra": {"note": text}}
    assert scrub(event) == []
    assert event["extra"]["note"] == text


def test_only_the_card_part_of_a_longer_digit_run_is_filtered() -> None:
    event = {"extra": {"a": "4111 1111 1111 1111 2024", "b": "ref 12 4111111111111111", "c": "x5555555555554444y"}}
    assert scrub(event) == ["extra.a", "extra.b", "extra.c"]
    assert event["extra"] == {"a": f"{FILTERED} 2024", "b": f"ref 12 {FILTERED}", "c": f"x{FILTERED}y"}


def test_several_cards_in_one_string() -> None:
    event = {"extra": {"note": "4111111111111111 and 5555 5555 5555 4444 or 378282246310005"}}
    assert scrub(event) == ["extra.note"]
    assert event["extra"]["note"] == f"{FILTERED} and {FILTERED} or {FILTERED}"


@pytest.mark.parametrize("place", PLACES)
def test_credit_cards_are_filtered_everywhere(place: str) -> None:
    build, read, path = PLACES[place]
    event = build("note", "4111111111111111")
    assert scrub(event) == [path("note")]
    assert read(event, "note") == FILTERED


def test_credit_card_scrubbing_can_be_turned_off() -> None:
    event = {"extra": {"note": "4111 1111 1111 1111", "password": "p"}}
    assert scrub(event, scrub_credit_cards=False) == ["extra.password"]
    assert event["extra"]["note"] == "4111 1111 1111 1111"


def test_numbers_that_are_not_strings_are_kept() -> None:
    event = {"extra": {"n": 4111111111111111, "f": 4111111111111111.0}}
    assert scrub(event) == []


def test_credit_cards_in_nested_lists_and_tuples() -> None:
    event: dict[str, Any] = {"extra": {"rows": [("4111111111111111", "ok"), ["x", {"c": "5555555555554444"}]]}}
    assert scrub(event) == ["extra.rows.0.0", "extra.rows.1.1.c"]
    assert event["extra"]["rows"] == [[FILTERED, "ok"], ["x", {"c": FILTERED}]]


def test_a_long_run_of_digit_groups_stays_fast() -> None:
    text = " ".join(["12"] * 20_000)
    event = {"extra": {"note": text}}
    assert scrub(event) == []


# -- recursion and cycles -------------------------------------------------------------------


def test_nested_values_are_scrubbed_when_recursive() -> None:
    event: dict[str, Any] = {
        "extra": {"config": {"db": {"password": "p", "host": "h"}, "servers": [{"token": "t"}, "plain"]}},
        "contexts": {"app": {"settings": {"SECRET_KEY": "k"}}},
    }
    assert scrub(event) == [
        "extra.config.db.password",
        "extra.config.servers.0.token",
        "contexts.app.settings.SECRET_KEY",
    ]
    assert event["extra"]["config"]["db"] == {"password": FILTERED, "host": "h"}


def test_only_the_first_level_without_recursion() -> None:
    event = {"extra": {"password": "p", "config": {"password": "nested"}, "note": "4111111111111111"}}
    assert scrub(event, recursive=False) == ["extra.password", "extra.note"]
    assert event["extra"]["config"] == {"password": "nested"}


def test_a_denied_container_goes_as_a_whole() -> None:
    event: dict[str, Any] = {"extra": {"credentials": {"user": "u", "pass": "p"}, "tokens_by_user": {"ada": "t"}}}
    assert scrub(event) == ["extra.credentials"]
    assert event["extra"]["credentials"] == FILTERED
    assert event["extra"]["tokens_by_user"] == {"ada": "t"}


def test_cycles_are_safe() -> None:
    config: dict[str, Any] = {"password": "p"}
    config["self"] = config
    items: list[Any] = ["4111111111111111"]
    items.append(items)
    items.append((items, {"token": "t"}))
    event = {"extra": {"config": config, "items": items}}
    paths = scrub(event)
    assert paths == ["extra.config.password", "extra.items.0", "extra.items.2.1.token"]
    assert config["password"] == FILTERED
    assert items[0] == FILTERED


def test_shared_values_are_reported_once() -> None:
    shared = {"token": "t"}
    event = {"extra": {"a": shared, "b": shared}}
    assert scrub(event) == ["extra.a.token"]
    assert event["extra"]["b"] == {"token": FILTERED}


def test_depth_is_capped() -> None:
    # extra is depth 0, extra.x depth 1: the last dict looked into is MAX_DEPTH levels below extra.
    deep: dict[str, Any] = {"password": "too deep", "note": "4111111111111111"}
    for _ in range(MAX_DEPTH):
        deep = {"level": deep}
    shallow: dict[str, Any] = {"password": "found", "note": "4111111111111111"}
    for _ in range(MAX_DEPTH - 1):
        shallow = {"level": shallow}
    event = {"extra": {"deep": deep, "shallow": shallow}}
    prefix = "extra.shallow" + ".level" * (MAX_DEPTH - 1)
    assert scrub(event) == [f"{prefix}.password", f"{prefix}.note"]


# -- configuration --------------------------------------------------------------------------


def test_custom_denylist_replaces_the_default() -> None:
    event = {"extra": {"password": "kept", "ssn": "123-45-6789", "patient_ssn": "x", "ssn_type": "kept"}}
    assert scrub(event, denylist=["ssn"]) == ["extra.ssn", "extra.patient_ssn"]
    assert event["extra"]["password"] == "kept"
    assert event["extra"]["ssn_type"] == "kept"


def test_custom_anywhere_entries() -> None:
    event = {"extra": {"ssn_type": "x", "patient_ssn": "y", "mass_number": "z", "ss_number": "y", "serial": "kept"}}
    assert scrub(event, denylist=["*ssn*"]) == [
        "extra.ssn_type",
        "extra.patient_ssn",
        "extra.mass_number",
        "extra.ss_number",
    ]


def test_default_can_be_extended() -> None:
    scrubber = EventScrubber(denylist=[*DEFAULT_DENYLIST, "ssn"])
    assert scrubber.is_denied("password")
    assert scrubber.is_denied("patient_ssn")


def test_custom_entries_are_normalized() -> None:
    scrubber = EventScrubber(denylist=["X-Shop-Signature", "  *Internal_Id*  ", "", "*", "-"])
    assert scrubber.is_denied("x_shop_signature")
    assert scrubber.is_denied("XShopSignature")
    assert scrubber.is_denied("my_internal_id_value")
    assert not scrubber.is_denied("password")
    assert not scrubber.is_denied("")


def test_empty_lists_filter_no_key_but_still_cards() -> None:
    event = {"extra": {"password": "p", "note": "4111111111111111"}, "user": {"ip_address": "1.2.3.4"}}
    assert scrub(event, denylist=[], pii_denylist=()) == ["extra.note"]
    assert event["user"] == {"ip_address": "1.2.3.4"}


def test_custom_pii_denylist() -> None:
    event = {"extra": {"ip_address": "kept", "phone": "555"}}
    assert scrub(event, pii_denylist=["phone"]) == ["extra.phone"]
    assert scrub({"extra": {"phone": "555"}}, pii_denylist=["phone"], send_default_pii=True) == []


def test_denylist_must_not_be_a_string() -> None:
    with pytest.raises(TypeError):
        EventScrubber(denylist="password")
    with pytest.raises(TypeError):
        EventScrubber(pii_denylist="ip_address")
    with pytest.raises(TypeError):
        EventScrubber(denylist=["password", 3])  # type: ignore[list-item]


def test_attributes_and_repr() -> None:
    scrubber = EventScrubber(denylist=("a", "b"), send_default_pii=True, recursive=False)
    assert scrubber.denylist == ("a", "b")
    assert scrubber.pii_denylist == DEFAULT_PII_DENYLIST
    assert (scrubber.recursive, scrubber.send_default_pii, scrubber.scrub_credit_cards) == (False, True, True)
    assert "send_default_pii=True" in repr(scrubber)


def test_key_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scrubber, "_CACHE_SIZE", 8)
    scrubber = EventScrubber()
    for i in range(50):
        assert scrubber.is_denied(f"token_{i}_token")
        assert not scrubber.is_denied(f"name_{i}")
    assert len(scrubber._cache) <= 8


def test_docstring_example() -> None:
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(EventScrubber, "EventScrubber", globs={"EventScrubber": EventScrubber}):
        runner.run(test)
    assert runner.failures == 0
    assert runner.tries >= 1


# -- odd input ------------------------------------------------------------------------------

#: Odd events, and the paths the scrubber reports for each (with ``recursive`` on or off).
ODD_EVENTS: list[tuple[Any, list[str]]] = [
    (None, []),
    ("event", []),
    ([], []),
    ({}, []),
    ({"extra": None}, []),
    ({"extra": "password"}, []),
    ({"extra": ["password", "4111111111111111"]}, []),
    ({"contexts": None}, []),
    ({"contexts": ["db"]}, []),
    ({"contexts": {"db": None, "os": "linux", "app": [1, 2], 3: {"token": "x"}}}, ["contexts.3.token"]),
    ({"breadcrumbs": None}, []),
    ({"breadcrumbs": "crumbs"}, []),
    ({"breadcrumbs": {"values": None}}, []),
    ({"breadcrumbs": {"values": [None, 1, "x", {"data": None}, {"data": [1]}, {"data": "token"}]}}, []),
    ({"request": None}, []),
    ({"request": "GET /"}, []),
    ({"request": {"headers": None, "cookies": None, "data": None, "env": None, "query_string": None, "url": None}}, []),
    (
        {"request": {"headers": "Authorization: x", "cookies": 5, "env": [1], "query_string": 7, "url": 8}},
        ["request.cookies"],
    ),
    ({"request": {"headers": [None, [], ["a"], ("a", "b", "c")], "query_string": [None, [1, 2]]}}, []),
    ({"request": {"cookies": ["junk", [None, "x"]]}}, ["request.cookies"]),
    ({"request": {"url": "https://x/?", "query_string": "&&=&==&?"}}, []),
    ({"exception": None}, []),
    ({"exception": "boom"}, []),
    ({"exception": {"values": [None, {"stacktrace": None}, {"stacktrace": {"frames": None}}]}}, []),
    (
        {"exception": {"values": [{"stacktrace": {"frames": [None, {"vars": None}, {"vars": ["x"]}, {"vars": "x"}]}}]}},
        [],
    ),
    ({"threads": {"values": "x"}}, []),
    ({"stacktrace": None}, []),
    ({"stacktrace": {"frames": "x"}}, []),
    ({"user": None}, []),
    ({"user": "ada"}, []),
    ({"user": {"data": None, 1: 2}}, []),
    (
        {"extra": {"token": {1, 2}}},
        ["extra.token"],
    ),  # sets inside: test_card_numbers_and_denied_keys_inside_sets_are_filtered
]


def value_at(value: Any, path: str) -> Any:
    """The value at a path the scrubber reports (``contexts.3.token``: a key is matched by its ``str``)."""
    for part in path.split("."):
        if isinstance(value, dict):
            (value,) = [v for k, v in value.items() if str(k) == part]
        else:
            value = value[int(part)]
    return value


def set_at(value: Any, path: str, new: Any) -> None:
    parent_path, _, last = path.rpartition(".")
    parent = value_at(value, parent_path) if parent_path else value
    if isinstance(parent, dict):
        (key,) = [k for k in parent if str(k) == last]
        parent[key] = new
    else:
        parent[int(last)] = new


def denied_values_left(scrubber: EventScrubber, value: Any) -> list[Any]:
    """The values of denied keys anywhere in ``value`` that still hide something."""
    left: list[Any] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and scrubber.is_denied(key):
                if key.lower() == "cookies" and isinstance(item, (dict, list)):
                    pairs = item.values() if isinstance(item, dict) else [pair[1] for pair in item]
                    left += [v for v in pairs if v != FILTERED]
                elif item not in (None, "", FILTERED) and item != {} and item != []:
                    left.append(item)
            else:
                left += denied_values_left(scrubber, item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            left += denied_values_left(scrubber, item)
    return left


@pytest.mark.parametrize(("event", "paths"), ODD_EVENTS, ids=[str(i) for i in range(len(ODD_EVENTS))])
@pytest.mark.parametrize("options", [{}, {"recursive": False, "send_default_pii": True}], ids=["default", "flat"])
def test_odd_input_does_not_raise(event: Any, paths: list[str], options: dict[str, Any]) -> None:
    """Odd shapes are scrubbed where they can be, reported exactly, and left alone everywhere else."""
    scrubber = EventScrubber(**options)
    scrubbed = copy.deepcopy(event)
    assert scrubber.scrub_event(scrubbed) == paths
    # Only what was reported changed, and each reported value did change.
    unchanged = copy.deepcopy(event)
    for path in paths:
        assert value_at(scrubbed, path) != value_at(event, path)
        set_at(unchanged, path, value_at(scrubbed, path))
    assert scrubbed == unchanged
    assert type(scrubbed) is type(event)
    # No denied key keeps a value that hides something, and a second pass has nothing to do.
    assert denied_values_left(scrubber, scrubbed) == []
    again = copy.deepcopy(scrubbed)
    assert scrubber.scrub_event(again) == []
    assert again == scrubbed


def test_odd_cookies_in_request() -> None:
    event = {"request": {"cookies": ["junk", [None, "x"], ["a", "b"]]}}
    assert scrub(event) == ["request.cookies"]
    assert event["request"]["cookies"] == [["a", FILTERED]]


# -- Sentry accepts the result ---------------------------------------------------------------


def test_a_scrubbed_event_of_every_kind_passes_relay() -> None:
    event = valid_event(
        extra=dict.fromkeys(DENIED_WORDS + PII_WORDS, SECRET),
        contexts={
            "db": dict.fromkeys(DENIED_WORDS, SECRET),
            "response": {"type": "response", "cookies": "a=1; b=2", "headers": {"Set-Cookie": "a=1"}},
            "feedback": {"message": "Card 4111 1111 1111 1111 does not work", "contact_email": "a@b.example"},
        },
        breadcrumbs={"values": [{"category": "http", "data": dict.fromkeys(DENIED_WORDS, SECRET)}]},
        request={
            "url": "https://x.example/a?token=1&b=2",
            "headers": {"Authorization": "Bearer x", "Cookie": "a=1", "X-Forwarded-For": "1.2.3.4"},
            "cookies": "sessionid=abc; theme=dark",
            "query_string": [["token", "x"], ["q", "4111 1111 1111 1111"]],
            "data": {"password": "p", "items": [{"card": "4111-1111-1111-1111"}]},
            "env": {"REMOTE_ADDR": "1.2.3.4", "HTTP_COOKIE": "a=1"},
        },
        user={"id": "1", "ip_address": "1.2.3.4"},
    )
    event.update(frame_event("exception", dict.fromkeys(DENIED_WORDS, f"'{SECRET}'")))
    event.update(frame_event("threads", {"token": "'t'"}))
    paths = scrub(event)
    assert len(paths) == len(set(paths)) > 4 * len(DENIED_WORDS)
    text = repr({k: v for k, v in event.items() if k != "contexts"})
    assert SECRET not in text
    assert "4111" not in text
    assert event["contexts"]["feedback"]["message"] == "Card 4111 1111 1111 1111 does not work"
    normalize_with_relay(event)


def test_a_feedback_event_is_left_alone() -> None:
    feedback = {"message": "My password is hunter2 and my card 4111 1111 1111 1111", "name": "Ada"}
    event = valid_event(type="feedback", level="info", contexts={"feedback": dict(feedback)})
    assert scrub(event) == []
    assert event["contexts"]["feedback"] == feedback


# -- the fast path gives exactly what the straightforward algorithm gives ------------------
#
# scrub_before_sending first runs a read-only pass, and copies and scrubs nothing when nothing
# changes (else the sections from the first that changes on); scrub_event skips card searches
# through a cheaper first search. Reference below is
# the algorithm without either: copy every section (_copy_tree), then scrub all of it, every
# string searched for card numbers. Both must give the same paths, the same event (same types:
# a tuple is no list), the same JSON, and leave the values they were given in the same state.


def _reference_filter_cards(text: str) -> str:
    pieces: list[str] = []
    last = 0
    for match in _scrubber._DIGIT_RUN.finditer(text):
        base = match.start()
        for start, end in _scrubber._card_spans(match.group()):
            pieces.append(text[last : base + start])
            pieces.append(FILTERED)
            last = base + end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _reference_copy_tree(value: Any, depth: int = 32) -> Any:
    if depth <= 0:
        return value
    if isinstance(value, dict):
        return {k: _reference_copy_tree(v, depth - 1) for k, v in value.copy().items()}
    if isinstance(value, (list, tuple)):
        return [_reference_copy_tree(v, depth - 1) for v in list(value)]
    return value


class Reference:
    """The scrubber's rules, implemented the straightforward way (no cache, no read-only pass)."""

    def __init__(self, scrubber: EventScrubber) -> None:
        self._deny = _scrubber._compile(scrubber.denylist, "denylist")
        self._pii = _scrubber._compile(scrubber.pii_denylist, "pii_denylist")
        self.recursive = scrubber.recursive
        self.send_default_pii = scrubber.send_default_pii
        self.scrub_credit_cards = scrubber.scrub_credit_cards
        self._mask = 1 if scrubber.send_default_pii else 3

    def _flags(self, key: str) -> int:
        compact = key.lower().translate(_scrubber._COMPACT)
        flags = 1 if self._deny is not None and self._deny.search(compact) else 0
        if self._pii is not None and self._pii.search(compact):
            flags |= 2
        return flags

    def scrub_before_sending(self, event: dict[str, Any]) -> None:
        try:
            for key in ("extra", "contexts", "breadcrumbs", "request", "user"):
                if key in event:
                    event[key] = _reference_copy_tree(event[key])
            paths = self.scrub_event(event)
        except Exception:
            for key in ("extra", "breadcrumbs", "request"):
                event.pop(key, None)
            for section in ("exception", "threads"):
                for value in (event.get(section) or {}).get("values") or ():
                    for frame in ((value.get("stacktrace") or {}).get("frames")) or ():
                        frame.pop("vars", None)
            return
        if paths:
            meta = event.setdefault("_meta", {})
            for path in paths:
                node = meta
                for part in path.split("."):
                    node = node.setdefault(part, {})
                node[""] = {"rem": [["!sentry_feedback.event_scrubber", "s"]]}

    def scrub_event(self, event: Any) -> list[str]:
        out: list[str] = []
        if not isinstance(event, dict) or not event:
            return out
        mask = self._mask
        active: set[int] = set()
        extra = event.get("extra")
        if isinstance(extra, dict) and extra:
            self._dict(extra, "extra", 0, mask, out, active)
        contexts = event.get("contexts")
        if isinstance(contexts, dict) and contexts:
            for name, context in contexts.items():
                if isinstance(context, dict) and context and name not in ("trace", "feedback"):
                    self._dict(context, f"contexts.{name}", 0, mask, out, active)
        crumbs = event.get("breadcrumbs")
        if crumbs is not None:
            prefix, values = _scrubber._values(crumbs, "breadcrumbs")
            for i, crumb in enumerate(values):
                if isinstance(crumb, dict):
                    data = crumb.get("data")
                    if isinstance(data, dict) and data:
                        self._dict(data, f"{prefix}.{i}.data", 0, mask, out, active)
        request = event.get("request")
        if isinstance(request, dict) and request:
            self._request(request, mask, out, active)
        for key in ("exception", "threads"):
            container = event.get(key)
            if container is not None:
                prefix, values = _scrubber._values(container, key)
                for i, value in enumerate(values):
                    if isinstance(value, dict):
                        self._stacktrace(value.get("stacktrace"), f"{prefix}.{i}.stacktrace", mask, out, active)
        if "stacktrace" in event:
            self._stacktrace(event["stacktrace"], "stacktrace", mask, out, active)
        if not self.send_default_pii and self._pii is not None:
            user = event.get("user")
            if isinstance(user, dict) and user:
                removed = []
                for key, value in user.items():
                    if isinstance(key, str) and self._flags(key) & 2:
                        if value is not None and not (isinstance(value, str) and not value):
                            removed.append(key)
                    elif self.recursive and isinstance(value, (dict, list, tuple)) and value:
                        self._container(user, key, value, f"user.{key}", 0, 2, out, active, cards=False)
                for key in removed:
                    del user[key]
                    out.append(f"user.{key}")
        return out

    def _stacktrace(self, stacktrace: object, path: str, mask: int, out: list[str], active: set[int]) -> None:
        if isinstance(stacktrace, dict):
            frames = stacktrace.get("frames")
            if isinstance(frames, list):
                for i, frame in enumerate(frames):
                    if isinstance(frame, dict):
                        variables = frame.get("vars")
                        if isinstance(variables, dict) and variables:
                            self._dict(variables, f"{path}.frames.{i}.vars", 0, mask, out, active)

    def _request(self, request: dict[Any, Any], mask: int, out: list[str], active: set[int]) -> None:
        for key in ("headers", "data", "env", "query_string"):
            value = request.get(key)
            if value is None:
                continue
            path = f"request.{key}"
            if isinstance(value, dict):
                if value:
                    self._dict(value, path, 0, mask, out, active)
            elif isinstance(value, str):
                if key == "query_string":
                    new = self._query(value, path, mask, out)
                elif self.scrub_credit_cards:
                    new = _reference_filter_cards(value)
                    if new is not value:
                        out.append(path)
                else:
                    continue
                if new is not value:
                    request[key] = new
            elif isinstance(value, (list, tuple)):
                if key in ("headers", "query_string"):
                    new_pairs = self._pairs(value, path, mask, out)
                    if new_pairs is not value:
                        request[key] = new_pairs
                elif self.recursive:
                    self._container(request, key, value, path, 0, mask, out, active)
        cookies = request.get("cookies")
        if not _scrubber._hides_nothing(cookies):
            filtered = _scrubber._filter_cookies(cookies, {})
            if filtered is not None:
                request["cookies"] = filtered
                out.append("request.cookies")
        url = request.get("url")
        if isinstance(url, str) and "?" in url:
            base, _, rest = url.partition("?")
            query, hash_sign, fragment = rest.partition("#")
            sink: list[str] = []
            new_query = self._query(query, "request.url", mask, sink)
            if sink:
                request["url"] = f"{base}?{new_query}{hash_sign}{fragment}"
                out.append("request.url")

    def _query(self, query: str, path: str, mask: int, out: list[str]) -> str:
        if "=" not in query:
            return query
        parts = query.split("&")
        changed = False
        for i, part in enumerate(parts):
            raw_name, sep, raw_value = part.partition("=")
            if not sep or not raw_value:
                continue
            name = _scrubber.unquote_plus(raw_name.lstrip("?"))
            value = _scrubber.unquote_plus(raw_value)
            if value == FILTERED:
                continue
            if name and self._flags(name) & mask:
                parts[i] = f"{raw_name}={FILTERED}"
            elif self.scrub_credit_cards and len(value) >= 13:
                filtered = _reference_filter_cards(value)
                if filtered is value:
                    continue
                parts[i] = f"{raw_name}={_scrubber.quote_plus(filtered, safe='[]')}"
            else:
                continue
            changed = True
            out.append(f"{path}.{name}")
        return "&".join(parts) if changed else query

    def _pairs(self, pairs: list[Any] | tuple[Any, ...], path: str, mask: int, out: list[str]) -> Any:
        result: list[Any] | None = None
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                continue
            name, value = pair
            if not isinstance(name, str):
                continue
            if self._flags(name) & mask:
                if _scrubber._hides_nothing(value):
                    continue
                new_value: Any = FILTERED
            elif self.scrub_credit_cards and isinstance(value, str) and len(value) >= 13:
                new_value = _reference_filter_cards(value)
                if new_value is value:
                    continue
            else:
                continue
            if result is None:
                result = list(pairs)
            result[i] = [name, new_value]
            out.append(f"{path}.{name}")
        return pairs if result is None else result

    def _dict(
        self,
        mapping: dict[Any, Any],
        path: str,
        depth: int,
        mask: int,
        out: list[str],
        active: set[int],
        cards: bool = True,
    ) -> None:
        cards = cards and self.scrub_credit_cards
        recursive = self.recursive and depth < MAX_DEPTH
        for key, value in mapping.items():
            if value is None or value is True or value is False:
                continue
            flags = self._flags(key) if isinstance(key, str) else 0
            if flags & mask:
                if _scrubber._hides_nothing(value):
                    continue
                new_value = (
                    FILTERED
                    if key.lower() != "cookies"
                    else _scrubber._filter_cookies(value, _scrubber._cookies_fallback(mapping, path, depth))
                )
                if new_value is not None:
                    mapping[key] = new_value
                    out.append(f"{path}.{key}")
            else:
                self._value(mapping, key, value, path, depth, mask, out, active, cards, recursive)

    def _value(
        self,
        parent: Any,
        key: Any,
        value: Any,
        path: str,
        depth: int,
        mask: int,
        out: list[str],
        active: set[int],
        cards: bool,
        recursive: bool,
    ) -> None:
        if type(value) is str:
            if cards:
                new = _reference_filter_cards(value)
                if new is not value:
                    parent[key] = new
                    out.append(f"{path}.{key}")
        elif recursive and isinstance(value, (dict, list, tuple)) and value:
            self._container(parent, key, value, f"{path}.{key}", depth, mask, out, active, cards)

    def _container(
        self,
        parent: Any,
        key: Any,
        value: Any,
        path: str,
        depth: int,
        mask: int,
        out: list[str],
        active: set[int],
        cards: bool = True,
    ) -> None:
        marker = id(value)
        if marker in active:
            return
        active.add(marker)
        try:
            if isinstance(value, dict):
                self._dict(value, path, depth + 1, mask, out, active, cards)
            else:
                items = value if isinstance(value, list) else list(value)
                before = len(out)
                cards = cards and self.scrub_credit_cards
                recursive = self.recursive and depth + 1 < MAX_DEPTH
                for i, item in enumerate(items):
                    self._value(items, i, item, path, depth + 1, mask, out, active, cards, recursive)
                if not isinstance(value, list) and len(out) > before:
                    parent[key] = items
        finally:
            active.discard(marker)


class Dict(dict):  # type: ignore[type-arg]
    """A dict subclass: copying makes it a plain dict."""


class Text(str):
    """A str subclass: never searched for card numbers."""

    __slots__ = ()


class Opaque:
    """Some object the scrubber knows nothing about (deep copies keep the very same one)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Opaque:
        return self

    def __repr__(self) -> str:
        return "<Opaque>"


OPAQUE = Opaque()

DENIED_KEYS = [
    "password",
    "db_password",
    "api_key",
    "X-Api-Key",
    "Authorization",
    "token",
    "user_token",
    "session",
    "sessionid",
    "cookie",
    "Cookie",
    "cookies",
    "ip_address",  # PII
    "X-Forwarded-For",
    "remote_addr",
    "ssn",  # in the custom lists
    "iban_number",
    "email",
]
HARMLESS_KEYS = [
    "name",
    "id",
    "message",
    "author",
    "tokenizer",
    "session_count",
    # The names of the places the scrubber looks at.
    "type",
    "response",
    "data",
    "values",
    "headers",
    "url",
    "query_string",
    "env",
    "frames",
    "vars",
    "stacktrace",
    "feedback",
    "trace",
]
KEY_NAMES = DENIED_KEYS + HARMLESS_KEYS
PLAIN_TEXTS = [
    "",
    "x",
    "ada",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "2024-01-15 12:30:45.123456",
    "1700000000000",
    "4111111111111112",
    "https://x.example/p?a=1",
    "a=1",
]
TRICKY_TEXTS = [
    FILTERED,
    "4111 1111 1111 1111",
    "4111111111111111",
    "paid with 5555-5555-5555-4444 yesterday",
    "a=1; b=2",
    "sessionid=abc; theme=dark",
    "token=x&a=1",
    "a=1&b=4111+1111+1111+1111",
    "https://x.example/p?token=1&a=2#f",
]

# Mostly harmless names and text: a part is often left with one thing that decides whether it changes.
harmless_keys = st.sampled_from(HARMLESS_KEYS)
keys = st.one_of(
    harmless_keys,
    harmless_keys,
    harmless_keys,
    st.sampled_from(DENIED_KEYS),
    st.sampled_from(KEY_NAMES).map(Text),
    st.text(alphabet="abcdeiknoprstw_-. ", max_size=12),
    st.integers(-2, 2),
)
plain_texts = st.sampled_from(PLAIN_TEXTS)
texts = st.one_of(
    plain_texts,
    plain_texts,
    st.sampled_from(TRICKY_TEXTS),
    st.text(alphabet="0123456789 -ab=;&?#", max_size=30),
    st.sampled_from(PLAIN_TEXTS + TRICKY_TEXTS).map(Text),
)
plain_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts, texts)
# Copied as they are, but an empty tuple becomes a list.
odd_leaves = st.sampled_from([OPAQUE, (), Text("")])
leaves = st.one_of(plain_leaves, plain_leaves, plain_leaves, plain_leaves, odd_leaves)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    lists = st.lists(children, max_size=4)
    dicts = st.dictionaries(keys, children, max_size=5)
    return st.one_of(
        lists,
        lists,
        dicts,
        dicts,
        dicts,
        # Copies of these are no longer of the same type.
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=3).map(Dict),
        # Headers and query parameters as pairs.
        st.lists(st.tuples(st.sampled_from(KEY_NAMES), texts), max_size=3).map(lambda pairs: [list(p) for p in pairs]),
    )


values = st.recursive(leaves, _containers, max_leaves=12)
mappings = st.dictionaries(keys, values, max_size=6)
mapping_or_odd = st.one_of(mappings, mappings, values)
crumb = st.one_of(
    st.fixed_dictionaries(
        {"message": texts}, optional={"data": mapping_or_odd, "category": st.just("http"), "extra": values}
    ),
    values,
)
frames = st.lists(
    st.one_of(st.fixed_dictionaries({"function": st.just("f")}, optional={"vars": mapping_or_odd}), values)
)
stacktrace = st.one_of(st.fixed_dictionaries({"frames": frames}), values)
exception = st.one_of(
    st.fixed_dictionaries({"values": st.lists(st.fixed_dictionaries({}, optional={"stacktrace": stacktrace}))}),
    st.lists(st.fixed_dictionaries({"stacktrace": stacktrace})),
    values,
)
request = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "url": texts,
            "method": st.just("GET"),
            "headers": st.one_of(mappings, values),
            "cookies": st.one_of(mappings, texts, values),
            "data": values,
            "env": st.one_of(mappings, values),
            "query_string": st.one_of(texts, values),
        },
    ),
    values,
)
events = st.fixed_dictionaries(
    {"event_id": st.just("0" * 32)},
    optional={
        "extra": mapping_or_odd,
        "contexts": st.one_of(
            st.dictionaries(st.sampled_from(["trace", "feedback", "db", "response", "app", 7]), mapping_or_odd),
            values,
        ),
        "breadcrumbs": st.one_of(st.fixed_dictionaries({"values": st.lists(crumb, max_size=4)}), st.lists(crumb)),
        "request": request,
        "user": mapping_or_odd,
        "exception": exception,
        "threads": exception,
        "stacktrace": stacktrace,
        "tags": st.dictionaries(st.sampled_from(KEY_NAMES), texts),
    },
)
scrubber_options = st.fixed_dictionaries(
    {},
    optional={
        "recursive": st.booleans(),
        "send_default_pii": st.booleans(),
        "scrub_credit_cards": st.booleans(),
        "denylist": st.sampled_from([[], ["ssn", "*iban*"], [*DEFAULT_DENYLIST, "ssn"]]),
        "pii_denylist": st.sampled_from([[], ["email"]]),
    },
)


def _containers_in(value: Any, found: list[Any], seen: set[int]) -> list[Any]:
    if isinstance(value, (dict, list)) and id(value) not in seen:
        seen.add(id(value))
        found.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers_in(item, found, seen)
    return found


@st.composite
def tangled_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event in which a container is also found elsewhere, possibly inside itself.

    Only one: copying a container that holds two ways back into itself (which every version
    of scrub_before_sending does) makes 2**32 copies.
    """
    event = draw(events)
    containers = _containers_in(event, [], set())[1:]  # not the event itself
    if containers:
        target = draw(st.sampled_from(containers))
        shared = draw(st.sampled_from(containers))
        if isinstance(target, dict):
            target[draw(keys)] = shared
        else:
            target.append(shared)
    return event


def same(a: Any, b: Any, assumed: set[tuple[int, int]] | None = None) -> bool:
    """Structural equality that tells a tuple from a list and a dict subclass from a dict, and survives cycles."""
    assumed = set() if assumed is None else assumed
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list, tuple)):
        pair = (id(a), id(b))
        if pair in assumed:
            return True
        assumed.add(pair)
        if isinstance(a, dict):
            return [(type(k), k) for k in a] == [(type(k), k) for k in b] and all(same(a[k], b[k], assumed) for k in a)
        return len(a) == len(b) and all(same(x, y, assumed) for x, y in zip(a, b, strict=True))
    return a is b or a == b


COPIED = ("extra", "contexts", "breadcrumbs", "request", "user")
SECTIONS = (*COPIED, "exception", "threads", "stacktrace")


def check_against_reference(event: dict[str, Any], options: dict[str, Any], scrubber: EventScrubber | None) -> None:
    scrubber = scrubber or EventScrubber(**options)
    reference = Reference(scrubber)

    # scrub_event, in place.
    ours, theirs = copy.deepcopy(event), copy.deepcopy(event)
    assert scrubber.scrub_event(ours) == reference.scrub_event(theirs)
    assert same(ours, theirs)

    # scrub_before_sending: the same event, the same JSON, and what it was given left in the same state.
    ours, theirs = copy.deepcopy(event), copy.deepcopy(event)
    given_ours = {key: ours[key] for key in SECTIONS if key in ours}
    given_theirs = {key: theirs[key] for key in SECTIONS if key in theirs}
    _scrubber.scrub_before_sending(scrubber, ours)
    reference.scrub_before_sending(theirs)
    assert same(ours, theirs)
    assert dumps(ours) == dumps(theirs)
    assert same(given_ours, given_theirs)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events, options=scrubber_options)
def test_same_result_as_the_straightforward_algorithm(event: dict[str, Any], options: dict[str, Any]) -> None:
    check_against_reference(event, options, None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=tangled_events(), options=scrubber_options)
def test_same_result_with_shared_values_and_cycles(event: dict[str, Any], options: dict[str, Any]) -> None:
    check_against_reference(event, options, None)


def _nested(levels: int, bottom: Any) -> Any:
    for _ in range(levels):
        bottom = {"level": bottom}
    return bottom


# Each thing that alone decides whether a part changes or copies differently.
EDGE_EVENTS: list[dict[str, Any]] = [
    {"extra": {"password": ()}},
    {"extra": {"password": Dict()}},
    {"extra": {"password": Text("")}},
    {"extra": {"x": ()}},
    {"extra": {"x": [Dict()]}},
    {"extra": {"x": Text("4111111111111111")}},
    {"extra": {"note": "1700000000000", "when": "2024-01-15 12:30:45.123456"}, "tags": {"t": (1,)}},
    {"extra": {Text("password"): "x"}},
    {"contexts": {"trace": {"x": (1,)}}},
    {"contexts": {"feedback": {"message": "4111111111111111", "password": "x"}}},
    {"contexts": {"db": {"password": FILTERED, "cookies": {}}}},
    {"contexts": {"response": {"type": "response", "cookies": {"a": FILTERED}}}},
    {"contexts": Dict(db={"x": 1})},
    {"breadcrumbs": {"values": [{"message": "m", "data": {"a": 1}, "extra": (1,)}]}},
    {"breadcrumbs": {"values": ({"data": {"token": "t"}},)}},
    {"breadcrumbs": {"values": [], "other": ()}},
    {"breadcrumbs": [{"data": Dict(a=1)}]},
    {"request": {"headers": [("Accept", "x")]}},
    {"request": {"headers": [["Accept", "x"]], "method": ()}},
    {"request": {"headers": "4111111111111111"}},
    {"request": {"cookies": {"a": FILTERED}}},
    {"request": {"cookies": {"a": FILTERED, "b": ()}}},
    {"request": {"cookies": [["a", FILTERED]]}},
    {"request": {"query_string": Text("token=x")}},
    {"request": {"query_string": "a=1&b=2", "url": "https://x.example/?a=4111111111111111"}},
    {"request": {"url": Text("https://x/?token=1")}},
    {"request": {"data": Dict(password="x")}},
    {"request": {"data": ["4111111111111111"]}},
    {"request": {7: "x", "headers": {"Accept": "x"}}},
    {"user": {"id": "1", "ip_address": "1.2.3.4"}},
    {"user": {"ip_address": "", "id": ()}},
    {"user": {"id": "1", "data": [()]}},
    {"user": {"id": "1", "data": {"client_ip": "1.2.3.4"}}},
    {"user": {Text("ip_address"): "1.2.3.4"}},
    {"exception": {"values": [{"stacktrace": {"frames": [{"vars": {"x": (1,)}}]}}]}},
    {"exception": {"values": [{"stacktrace": {"frames": [{"vars": {"x": "4111111111111111"}}]}}]}},
    {"threads": [{"stacktrace": {"frames": [{"vars": Dict(token="t")}]}}]},
    {"stacktrace": {"frames": [{"vars": {"a": [{"b": "ok"}]}}]}},
    # A card number alone, in each section.
    {"extra": {"note": "paid with 4111 1111 1111 1111"}, "user": {"id": "1"}},
    {"contexts": {"db": {"note": "4111111111111111"}, "trace": {"note": "4111111111111111"}}},
    {"breadcrumbs": {"values": [{"message": "m", "data": {"note": "4111 1111 1111 1111"}}]}},
    {"breadcrumbs": [{"message": "4111 1111 1111 1111", "data": {"n": 1}}], "user": {"id": "1"}},
    {"request": {"headers": {"X-Note": "4111111111111111"}, "url": "https://x.example/"}},
    {"request": {"data": "card 4111111111111111"}},
    {"user": {"id": "1", "data": {"note": "4111111111111111"}}},
    # Around the depth _copy_tree copies to.
    *({"extra": {"deep": _nested(levels, bottom)}} for levels in (29, 30, 31, 32) for bottom in ({}, (1,), "x")),
    *({"contexts": {"feedback": _nested(levels, (1,))}} for levels in (30, 31, 32)),
    {"extra": {"deep": _nested(20, {"token": "t"})}},
]


@pytest.mark.parametrize("options", [{}, {"recursive": False}, {"send_default_pii": True, "scrub_credit_cards": False}])
@pytest.mark.parametrize("event", EDGE_EVENTS, ids=[str(i) for i in range(len(EDGE_EVENTS))])
def test_same_result_on_edge_cases(event: dict[str, Any], options: dict[str, Any]) -> None:
    check_against_reference(event, options, None)


def test_same_result_when_a_value_is_inside_itself() -> None:
    for section in ("extra", "user"):
        loop: dict[str, Any] = {"x": 1}
        loop["self"] = loop
        check_against_reference({section: {"loop": loop}}, {}, None)
        items: list[Any] = ["a"]
        items.append(items)
        check_against_reference({section: {"items": items}}, {}, None)
    crumb: dict[str, Any] = {"message": "m"}
    crumb["again"] = crumb
    check_against_reference({"breadcrumbs": {"values": [crumb]}}, {}, None)


# One scrubber for many events: its key cache is warm (and sometimes full: cleared as it goes).
_SHARED_SCRUBBER = EventScrubber()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
def test_same_result_with_a_warm_cache(event: dict[str, Any]) -> None:
    check_against_reference(event, {}, _SHARED_SCRUBBER)


def _only_plain(value: Any, level: int = 0, above: frozenset[int] = frozenset()) -> bool:
    """Only dicts (str or int keys), lists and leaves, less than 32 levels deep, no cycle: a copy is the same."""
    if type(value) in (dict, list):
        if level >= 32 or id(value) in above:
            return False
        if type(value) is dict and not all(type(key) in (str, int) for key in value):
            return False
        inner = above | {id(value)}
        items = value.values() if type(value) is dict else value
        return all(_only_plain(item, level + 1, inner) for item in items)
    return not isinstance(value, (dict, list, tuple))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events, options=scrubber_options)
def test_nothing_to_scrub_means_nothing_copied(event: dict[str, Any], options: dict[str, Any]) -> None:
    scrubber = EventScrubber(**options)
    assert isinstance(event, dict)
    if Reference(scrubber).scrub_event(copy.deepcopy(event)):
        return
    if not all(_only_plain(event[key]) for key in COPIED if key in event):
        return
    before = copy.deepcopy(event)
    given = dict(event)
    _scrubber.scrub_before_sending(scrubber, event)
    assert all(event[key] is given[key] for key in given)
    assert event.keys() == given.keys()  # no _meta either
    assert same(event, before)


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(alphabet="0123456789 -x", max_size=40), st.text(max_size=40)))
def test_card_search_shortcut_is_exact(text: str) -> None:
    assert _scrubber._filter_cards(text) == _reference_filter_cards(text)
    assert (_scrubber._filter_cards(text) is text) == (_reference_filter_cards(text) is text)
    texts = [text, "no digits here", "123"]
    assert _scrubber._settle(False, texts) == (_reference_filter_cards(text) is not text)
    assert texts == []


def feedback_event() -> dict[str, Any]:
    """A feedback as the client sends it: nothing in it to filter."""
    return valid_event(
        type="feedback",
        level="info",
        contexts={
            "feedback": {"message": "The pay button does nothing", "contact_email": "jane@example.com"},
            "trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16]},
        },
        tags={"page": "checkout"},
        user={"id": "42", "email": "jane@example.com"},
        breadcrumbs={
            "values": [
                {"category": "ui.click", "message": f"clicked {i}", "data": {"target": f"button#step-{i}", "x": i}}
                for i in range(5)
            ]
        },
        request={
            "url": "https://shop.example/checkout",
            "method": "POST",
            "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "Accept": "text/html"},
        },
    )


def test_an_event_with_nothing_to_scrub_is_neither_copied_nor_changed() -> None:
    event = feedback_event()
    before = copy.deepcopy(event)
    sections = {key: event[key] for key in ("contexts", "breadcrumbs", "request", "user")}
    _scrubber.scrub_before_sending(EventScrubber(), event)
    assert event == before
    assert "_meta" not in event
    for key, section in sections.items():
        assert event[key] is section


def test_sections_before_the_first_that_changes_are_not_copied() -> None:
    event = feedback_event()
    user = {"id": "42", "ip_address": "203.0.113.7"}
    event["user"] = user
    sections = {key: event[key] for key in ("contexts", "breadcrumbs", "request")}
    _scrubber.scrub_before_sending(EventScrubber(), event)
    assert event["user"] == {"id": "42"}
    assert user == {"id": "42", "ip_address": "203.0.113.7"}  # what the scope holds is left alone
    assert event["_meta"] == {"user": {"ip_address": {"": {"rem": [[_scrubber._RULE, "s"]]}}}}
    for key, section in sections.items():
        assert event[key] is section


def test_sections_that_change_are_copied_first() -> None:
    event = feedback_event()
    extra = {"cart": {"auth_token": "abc", "n": 1}}
    event["extra"] = extra
    crumbs = copy.deepcopy(event["breadcrumbs"])
    _scrubber.scrub_before_sending(EventScrubber(), event)
    assert event["extra"] == {"cart": {"auth_token": FILTERED, "n": 1}}
    assert extra == {"cart": {"auth_token": "abc", "n": 1}}
    assert event["breadcrumbs"] == crumbs
    assert list(event["_meta"]) == ["extra"]


def test_a_subclass_scrub_event_runs_for_every_event() -> None:
    class Counting(EventScrubber):
        __slots__ = ("calls",)

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def scrub_event(self, event: dict[str, Any]) -> list[str]:
            self.calls += 1
            return super().scrub_event(event)

    scrubber = Counting()
    _scrubber.scrub_before_sending(scrubber, feedback_event())
    assert scrubber.calls == 1


class RaisingClass:
    """Fails every isinstance check that is not about its own type."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class for you")


def test_input_the_read_only_pass_chokes_on_is_handled_as_before() -> None:
    event = frame_event("exception", {"i": 1})
    event["extra"] = {"x": RaisingClass(), "password": "p"}
    event["breadcrumbs"] = {"values": [{"data": {"token": "t"}}]}
    theirs = copy.deepcopy(event)
    Reference(EventScrubber()).scrub_before_sending(theirs)
    _scrubber.scrub_before_sending(EventScrubber(), event)
    assert "extra" not in event and "breadcrumbs" not in event  # the copy failed: removed, not sent unscrubbed
    assert same(event, theirs)


def test_concurrent_use_with_a_churning_key_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scrubber, "_CACHE_SIZE", 16)
    scrubber = EventScrubber()
    reference = Reference(scrubber)
    failures: list[str] = []

    def work(worker: int) -> None:
        for i in range(300):
            event = feedback_event()
            event["extra"] = {f"key_{worker}_{i}": "x", f"token_{worker}_{i}": "t", "note": "4111111111111111"}
            event["breadcrumbs"]["values"][0]["data"][f"k{worker}_{i}_session"] = "s"
            expected = copy.deepcopy(event)
            reference.scrub_before_sending(expected)
            _scrubber.scrub_before_sending(scrubber, event)
            if event != expected:
                failures.append(f"{worker}/{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(scrubber._cache) <= 16


@pytest.mark.parametrize("kind", [set, frozenset])
def test_card_numbers_and_denied_keys_inside_sets_are_filtered(kind: type) -> None:
    event: dict[str, Any] = {
        "extra": {
            "cards": {"held": kind({"4111111111111111", "plain"})},
            "nested": [kind({"5500 0000 0000 0004"})],
            "password": kind({"hunter2"}),
        }
    }
    EventScrubber().scrub_event(event)
    extra = event["extra"]
    assert sorted(extra["cards"]["held"]) == ["[Filtered]", "plain"]
    assert list(extra["nested"][0]) == ["[Filtered]"]
    assert extra["password"] == "[Filtered]"
