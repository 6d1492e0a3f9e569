from __future__ import annotations

import datetime as dt
import email.utils
import os
import threading
import time

import pytest
from urllib3 import HTTPHeaderDict

from forking import fork_running, wait_exit
from sentry_feedback import _ratelimit
from sentry_feedback._ratelimit import (
    DEFAULT_RETRY_AFTER,
    KNOWN_CATEGORIES,
    RateLimiter,
    parse_rate_limits,
    parse_retry_after,
)


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _limiter() -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(clock=clock), clock


def fs(*names: str) -> frozenset[str]:
    return frozenset(names)


# --- parse_rate_limits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # The examples of Sentry's rate-limiting doc.
        (
            "60:transaction:key, 2700:default;error;security:organization",
            [(60.0, fs("transaction")), (2700.0, fs("default", "error", "security"))],
        ),
        ("60::organization, 2700::organization", [(60.0, fs()), (2700.0, fs())]),
        ("2700:metric_bucket:organization:quota_exceeded:custom", []),
        # Spaces anywhere are ignored.
        (" 60 : transaction ; error : key , 10 :: org ", [(60.0, fs("transaction", "error")), (10.0, fs())]),
        ("6 0:err or", [(60.0, fs("error"))]),
        ("\t30:\tfeedback\t", [(30.0, fs("feedback"))]),
        # Float seconds.
        ("1.5:feedback", [(1.5, fs("feedback"))]),
        ("0.25::org", [(0.25, fs())]),
        ("0:error", [(0.0, fs("error"))]),
        # Unknown categories mixed with known ones: known kept.
        ("60:error;metric_bucket;whatever:org", [(60.0, fs("error"))]),
        ("60:metric_bucket;feedback", [(60.0, fs("feedback"))]),
        # All unknown: ignored, others kept.
        ("60:metric_bucket;nope:org, 30:attachment", [(30.0, fs("attachment"))]),
        ("60:metric_bucket", []),
        # Empty categories mean all.
        ("60:", [(60.0, fs())]),
        ("60::", [(60.0, fs())]),
        ("60:;;:org", [(60.0, fs())]),
        # Extra dimensions ignored.
        ("60:error:org:quota_exceeded:ns1;ns2:extra:more", [(60.0, fs("error"))]),
        ("60:internal:key:reason", [(60.0, fs("internal"))]),
    ],
)
def test_parse_rate_limits(header: str, expected: list[tuple[float, frozenset[str]]]) -> None:
    assert parse_rate_limits(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "abc:error",
        ":error",
        "-5:error",
        "nan:error",
        "NaN:error",
        "inf:error",
        "-inf:error",
        "infinity:error",
        "1e400:error",
        "",
        ",,,",
        " , , ",
        "garbage",
        "\x00\xff;;::,,::",
        "60error",
        "\u2603:\u2603",
    ],
)
def test_parse_rate_limits_malformed_skipped(header: str) -> None:
    assert parse_rate_limits(header) == []


def test_parse_rate_limits_malformed_mixed_with_good() -> None:
    header = "abc:error, 10:feedback, -1:error, nan::, ,, 20::org, inf:attachment"
    assert parse_rate_limits(header) == [(10.0, fs("feedback")), (20.0, fs())]


def test_known_categories_cover_protocol_table() -> None:
    for name in ("error", "feedback", "attachment", "internal", "session", "transaction", "default"):
        assert name in KNOWN_CATEGORIES


# --- parse_retry_after ------------------------------------------------------------------

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("2.5", 2.5),
        ("0.001", 0.001),
    ],
)
def test_parse_retry_after_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW.timestamp()) == pytest.approx(expected)


@pytest.mark.parametrize("delta", [1, 90, 3600])
def test_parse_retry_after_http_date_future(delta: int) -> None:
    value = email.utils.format_datetime(NOW + dt.timedelta(seconds=delta), usegmt=True)
    assert parse_retry_after(value, now=NOW.timestamp()) == pytest.approx(delta)


def test_parse_retry_after_http_date_with_numeric_offset() -> None:
    when = (NOW + dt.timedelta(seconds=300)).astimezone(dt.timezone(dt.timedelta(hours=2)))
    value = email.utils.format_datetime(when)
    assert parse_retry_after(value, now=NOW.timestamp()) == pytest.approx(300)


@pytest.mark.parametrize("delta", [-1, -3600, 0])
def test_parse_retry_after_http_date_past_is_zero(delta: int) -> None:
    value = email.utils.format_datetime(NOW + dt.timedelta(seconds=delta), usegmt=True)
    assert parse_retry_after(value, now=NOW.timestamp()) == 0.0


def test_parse_retry_after_http_date_default_now_is_wall_clock() -> None:
    value = email.utils.format_datetime(dt.datetime.fromtimestamp(time.time() + 600, dt.timezone.utc), usegmt=True)
    result = parse_retry_after(value)
    assert result is not None
    assert 500 < result <= 601


@pytest.mark.parametrize(
    "value",
    ["", "   ", "soon", "-5", "nan", "inf", "-inf", "12 seconds", "Wed, 99 Foo 2024", "\x00"],
)
def test_parse_retry_after_garbage_is_none(value: str) -> None:
    assert parse_retry_after(value, now=NOW.timestamp()) is None


# --- RateLimiter ----------------------------------------------------------------------


def test_fresh_limiter_limits_nothing() -> None:
    limiter, _ = _limiter()
    assert not limiter.is_any_limited()
    assert limiter.snapshot() == {}
    for category in ("error", "feedback", "attachment", "internal", "default"):
        assert limiter.retry_after(category) == 0.0
        assert not limiter.is_limited(category)


@pytest.mark.parametrize("status", [429, 200, 202, 500, 413])
def test_rate_limits_header_applies_on_any_status(status: int) -> None:
    limiter, _ = _limiter()
    limiter.update(status, {"X-Sentry-Rate-Limits": "60:feedback;attachment:key, 10:error:org"})
    assert limiter.retry_after("feedback") == pytest.approx(60)
    assert limiter.retry_after("attachment") == pytest.approx(60)
    assert limiter.retry_after("error") == pytest.approx(10)
    assert not limiter.is_limited("internal")
    assert not limiter.is_limited("transaction")
    assert limiter.is_any_limited()
    assert limiter.snapshot() == pytest.approx({"feedback": 60, "attachment": 60, "error": 10})


def test_rate_limits_header_wins_over_retry_after_on_429() -> None:
    limiter, _ = _limiter()
    limiter.update(429, {"X-Sentry-Rate-Limits": "30:feedback", "Retry-After": "999"})
    assert limiter.retry_after("feedback") == pytest.approx(30)
    assert not limiter.is_limited("error")
    assert "" not in limiter.snapshot()


@pytest.mark.parametrize("retry_after", ["45", "45.0"])
def test_429_with_only_retry_after_limits_all(retry_after: str) -> None:
    limiter, _ = _limiter()
    limiter.update(429, {"Retry-After": retry_after})
    for category in ("error", "feedback", "attachment", "internal", "session", "anything"):
        assert limiter.retry_after(category) == pytest.approx(45)
    assert limiter.snapshot() == pytest.approx({"": 45})


def test_429_with_retry_after_http_date_limits_all() -> None:
    limiter, _ = _limiter()
    value = email.utils.format_datetime(dt.datetime.fromtimestamp(time.time() + 120, dt.timezone.utc), usegmt=True)
    limiter.update(429, {"Retry-After": value})
    assert 100 < limiter.retry_after("feedback") <= 121


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "garbage"}, {"Retry-After": "-3"}])
def test_429_without_usable_headers_means_60_seconds_for_all(headers: dict[str, str]) -> None:
    limiter, _ = _limiter()
    limiter.update(429, headers)
    assert DEFAULT_RETRY_AFTER == 60.0
    for category in ("error", "feedback", "internal"):
        assert limiter.retry_after(category) == pytest.approx(60)


@pytest.mark.parametrize("status", [200, 500, 413, 400])
def test_non_429_without_header_changes_nothing(status: int) -> None:
    limiter, _ = _limiter()
    limiter.update(status, {"Retry-After": "100"})
    assert not limiter.is_any_limited()


@pytest.mark.parametrize(
    "name", ["x-sentry-rate-limits", "X-SENTRY-RATE-LIMITS", "X-Sentry-Rate-Limits", "x-SeNtRy-RaTe-LiMiTs"]
)
def test_rate_limits_header_name_case_insensitive(name: str) -> None:
    limiter, _ = _limiter()
    limiter.update(200, {name: "20:feedback"})
    assert limiter.retry_after("feedback") == pytest.approx(20)


@pytest.mark.parametrize("name", ["retry-after", "RETRY-AFTER", "Retry-After", "rEtRy-AfTeR"])
def test_retry_after_header_name_case_insensitive(name: str) -> None:
    limiter, _ = _limiter()
    limiter.update(429, {name: "15"})
    assert limiter.retry_after("feedback") == pytest.approx(15)


def test_shorter_later_limit_never_shortens() -> None:
    limiter, clock = _limiter()
    limiter.update(429, {"X-Sentry-Rate-Limits": "100:feedback"})
    clock.advance(10)
    limiter.update(429, {"X-Sentry-Rate-Limits": "5:feedback"})
    assert limiter.retry_after("feedback") == pytest.approx(90)


def test_shorter_all_limit_never_shortens() -> None:
    limiter, _ = _limiter()
    limiter.update(429, {"Retry-After": "100"})
    limiter.update(429, {"Retry-After": "1"})
    limiter.update(429, {})  # 60 s
    assert limiter.retry_after("error") == pytest.approx(100)


def test_longer_later_limit_extends() -> None:
    limiter, clock = _limiter()
    limiter.update(429, {"X-Sentry-Rate-Limits": "10:feedback"})
    clock.advance(5)
    limiter.update(429, {"X-Sentry-Rate-Limits": "100:feedback"})
    assert limiter.retry_after("feedback") == pytest.approx(100)


@pytest.mark.parametrize(
    "category", ["error", "feedback", "attachment", "internal", "session", "transaction", "default", "x"]
)
def test_all_limit_applies_to_every_category(category: str) -> None:
    limiter, _ = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "30::organization"})
    assert limiter.is_limited(category)
    assert limiter.retry_after(category) == pytest.approx(30)


def test_category_and_all_limit_take_the_later_deadline() -> None:
    limiter, clock = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "100:feedback, 20::org"})
    assert limiter.retry_after("feedback") == pytest.approx(100)
    assert limiter.retry_after("error") == pytest.approx(20)
    clock.advance(30)
    assert limiter.retry_after("feedback") == pytest.approx(70)
    assert not limiter.is_limited("error")


def test_limits_expire_when_clock_passes_them() -> None:
    limiter, clock = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "10:feedback, 20:attachment"})
    clock.advance(9.5)
    assert limiter.is_limited("feedback")
    assert limiter.retry_after("feedback") == pytest.approx(0.5)
    clock.advance(0.5)
    assert not limiter.is_limited("feedback")
    assert limiter.retry_after("feedback") == 0.0
    assert limiter.is_limited("attachment")
    assert limiter.snapshot() == pytest.approx({"attachment": 10})
    clock.advance(10)
    assert not limiter.is_limited("attachment")
    assert not limiter.is_any_limited()
    assert limiter.snapshot() == {}


def test_zero_second_limit_limits_nothing() -> None:
    limiter, _ = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "0:feedback"})
    assert not limiter.is_limited("feedback")
    assert not limiter.is_any_limited()


def test_unknown_or_malformed_limits_ignored_by_limiter() -> None:
    limiter, _ = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "60:metric_bucket:org, abc:error, -5::org"})
    assert not limiter.is_any_limited()


def test_float_seconds_in_limiter() -> None:
    limiter, clock = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "2.5:error"})
    assert limiter.retry_after("error") == pytest.approx(2.5)
    clock.advance(2.4)
    assert limiter.is_limited("error")
    clock.advance(0.2)
    assert not limiter.is_limited("error")


def test_snapshot_reports_seconds_left_and_all_key() -> None:
    limiter, clock = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "50:feedback;error, 40::org"})
    clock.advance(15)
    assert limiter.snapshot() == pytest.approx({"feedback": 35, "error": 35, "": 25})


def test_is_any_limited_with_only_all_limit() -> None:
    limiter, clock = _limiter()
    limiter.update(429, {})
    assert limiter.is_any_limited()
    clock.advance(60)
    assert not limiter.is_any_limited()


def test_limits_hold_on_a_clock_that_starts_at_zero() -> None:
    # A monotonic clock may read anything, 0 and fractions of a second included.
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(clock=clock)
    assert limiter.retry_after("feedback") == 0.0
    assert not limiter.is_limited("feedback")
    limiter.update(200, {"X-Sentry-Rate-Limits": "0.5:feedback"})
    assert limiter.is_limited("feedback")
    assert limiter.retry_after("feedback") == pytest.approx(0.5)
    assert limiter.retry_after("error") == 0.0
    assert not limiter.is_limited("error")
    limiter.update(200, {"X-Sentry-Rate-Limits": "0.25::org"})
    assert limiter.snapshot() == pytest.approx({"feedback": 0.5, "": 0.25})
    clock.advance(0.25)
    assert limiter.retry_after("error") == 0.0
    assert limiter.retry_after("feedback") == pytest.approx(0.25)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_forked_child_keeps_the_limits_under_a_lock_of_its_own() -> None:
    limiter, _ = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "60:feedback"})

    def child() -> int:
        if not limiter.is_limited("feedback") or limiter.is_limited("error"):
            return 3
        limiter.update(200, {"X-Sentry-Rate-Limits": "30:error"})
        return 0 if limiter.snapshot() == {"feedback": 60.0, "error": 30.0} else 4

    # The fork happens while a thread of the parent is inside the limiter (holds its lock).
    with limiter._lock:
        pid = fork_running(child)
    assert wait_exit(pid) == 0
    assert limiter.snapshot() == {"feedback": 60.0}  # what the child learnt is its own


def test_at_fork_hook_renews_a_held_lock_and_keeps_the_limits() -> None:
    # What a forked child runs first, here in this process: the lock a parent's thread held is replaced.
    limiter, _ = _limiter()
    limiter.update(200, {"X-Sentry-Rate-Limits": "60:feedback, 30::org"})
    held = limiter._lock
    seen: list[dict[str, float]] = []
    with held:
        _ratelimit._reinit_in_child()
        reader = threading.Thread(target=lambda: seen.append(limiter.snapshot()), daemon=True)
        reader.start()
        reader.join(5)
    reader.join(5)
    assert seen == [{"feedback": 60.0, "": 30.0}]
    assert limiter._lock is not held


def test_every_value_of_a_repeated_header_applies() -> None:
    # A transport may answer with urllib3's headers: a repeated header is one value per line there.
    headers = HTTPHeaderDict()
    headers.add("X-Sentry-Rate-Limits", "60:feedback")
    headers.add("x-sentry-rate-limits", "30:error")
    limiter, _ = _limiter()
    limiter.update(200, headers)
    assert limiter.snapshot() == {"feedback": 60.0, "error": 30.0}
