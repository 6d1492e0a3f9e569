from __future__ import annotations

import copy
import doctest
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sentry_feedback import _scrubber
from sentry_feedback._scrubber import (
    DEFAULT_DENYLIST,
    DEFAULT_PII_DENYLIST,
    FILTERED,
    MAX_DEPTH,
    EventScrubber,
)
from sentry_feedback.testing import normalize_with_relay

SECRET = "s3cr3t-value"
DENIED_WORDS = [entry.strip("*") for entry in DEFAULT_DENYLIST]
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

ODD_EVENTS: list[Any] = [
    None,
    "event",
    [],
    {},
    {"extra": None},
    {"extra": "password"},
    {"extra": ["password", "4111111111111111"]},
    {"contexts": None},
    {"contexts": ["db"]},
    {"contexts": {"db": None, "os": "linux", "app": [1, 2], 3: {"token": "x"}}},
    {"breadcrumbs": None},
    {"breadcrumbs": "crumbs"},
    {"breadcrumbs": {"values": None}},
    {"breadcrumbs": {"values": [None, 1, "x", {"data": None}, {"data": [1]}, {"data": "token"}]}},
    {"request": None},
    {"request": "GET /"},
    {"request": {"headers": None, "cookies": None, "data": None, "env": None, "query_string": None, "url": None}},
    {"request": {"headers": "Authorization: x", "cookies": 5, "env": [1], "query_string": 7, "url": 8}},
    {"request": {"headers": [None, [], ["a"], ("a", "b", "c")], "query_string": [None, [1, 2]]}},
    {"request": {"cookies": ["junk", [None, "x"]]}},
    {"request": {"url": "https://x/?", "query_string": "&&=&==&?"}},
    {"exception": None},
    {"exception": "boom"},
    {"exception": {"values": [None, {"stacktrace": None}, {"stacktrace": {"frames": None}}]}},
    {"exception": {"values": [{"stacktrace": {"frames": [None, {"vars": None}, {"vars": ["x"]}, {"vars": "x"}]}}]}},
    {"threads": {"values": "x"}},
    {"stacktrace": None},
    {"stacktrace": {"frames": "x"}},
    {"user": None},
    {"user": "ada"},
    {"user": {"data": None, 1: 2}},
    {"extra": {"token": {1, 2}, "x": {"y": frozenset({"4111111111111111"})}}},
]


@pytest.mark.parametrize("event", ODD_EVENTS, ids=[str(i) for i in range(len(ODD_EVENTS))])
def test_odd_input_does_not_raise(event: Any) -> None:
    scrubber = EventScrubber()
    assert isinstance(scrubber.scrub_event(event), list)
    assert isinstance(EventScrubber(recursive=False, send_default_pii=True).scrub_event(copy.deepcopy(event)), list)


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
