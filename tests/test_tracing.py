"""Trace propagation: continue_trace, outgoing headers, and the envelope's trace header."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sentry_feedback as sf
from sentry_feedback._tracing import parse_baggage, parse_sentry_trace, parse_traceparent
from sentry_feedback.testing import MockTransport

TRACE = "771a43a4192642f0b136d5159a501700"
SPAN = "b0e6f15b45c36b12"
# The baggage example from Sentry's dynamic sampling context documentation.
BAGGAGE = (
    "other-vendor-value-1=foo;bar;baz, sentry-trace_id=771a43a4192642f0b136d5159a501700, "
    "sentry-public_key=49d0f7386ad645858ae85020e393bef3, sentry-sample_rate=0.01337, "
    "sentry-user_id=Am%C3%A9lie, other-vendor-value-2=foo;bar;"
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{TRACE}-{SPAN}-1", (TRACE, SPAN, True)),
        (f"{TRACE}-{SPAN}-0", (TRACE, SPAN, False)),
        (f"{TRACE}-{SPAN}", (TRACE, SPAN, None)),
        (f"  {TRACE.upper()}-{SPAN}-1 ", (TRACE, SPAN, True)),
        ("", None),
        ("garbage", None),
        (f"{TRACE}-{SPAN}-2", None),
        (f"{TRACE[:-1]}-{SPAN}", None),
        (f"{TRACE}", None),
        (f"{'0' * 32}-{SPAN}-1", None),
        (f"{TRACE}-{'0' * 16}", None),
        ("-1", None),
    ],
)
def test_parse_sentry_trace(header: str, expected: object) -> None:
    assert parse_sentry_trace(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-{SPAN}-01", (TRACE, SPAN, True)),
        (f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN, False)),
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 has exactly four fields
        (f"01-{TRACE}-{SPAN}-01-future", (TRACE, SPAN, True)),
        (f"ff-{TRACE}-{SPAN}-01", None),
        (f"00-{'0' * 32}-{SPAN}-01", None),
        ("00-xyz", None),
        ("", None),
    ],
)
def test_parse_traceparent(header: str, expected: object) -> None:
    assert parse_traceparent(header) == expected


def test_parse_baggage_doc_example() -> None:
    sentry, others = parse_baggage(BAGGAGE)
    assert sentry == {
        "trace_id": TRACE,
        "public_key": "49d0f7386ad645858ae85020e393bef3",
        "sample_rate": "0.01337",
        "user_id": "Amélie",
    }
    assert others == "other-vendor-value-1=foo;bar;baz,other-vendor-value-2=foo;bar;"


def check_baggage_rules(value: str, sentry: dict[str, str], others: str) -> None:
    """What parse_baggage promises for any header: sentry entries by name, every other ``key=value`` entry verbatim."""
    assert isinstance(sentry, dict) and isinstance(others, str)
    entries = [entry.strip() for entry in value.split(",")]
    keys = [entry.partition("=")[0].strip() for entry in entries if "=" in entry]
    for name, item in sentry.items():
        assert isinstance(name, str) and isinstance(item, str)
        assert f"sentry-{name}" in keys  # the prefix is removed, nothing else
    kept = [e for e in entries if "=" in e and e.partition("=")[0].strip() and not e.startswith("sentry-")]
    assert others == ",".join(kept)


@pytest.mark.parametrize(
    ("header", "sentry", "others"),
    [
        ("", {}, ""),
        (",,,", {}, ""),
        ("novalue", {}, ""),
        ("=x", {}, ""),
        ("sentry-", {}, ""),
        ("a=b=c", {}, "a=b=c"),
        ("\x00\x01", {}, ""),
        ("novalue, sentry-release=1.0%2B2;prop=1 , other = z ", {"release": "1.0+2"}, "other = z"),
        ("sentry-a=1,sentry-a=2", {"a": "2"}, ""),
        ("sentry-u=%zz,sentry-e=,k=v;p", {"u": "%zz", "e": ""}, "k=v;p"),
        ("k=v;p, sentry-t=%E2%98%83,,=y,x", {"t": "\u2603"}, "k=v;p"),
        ("SENTRY-x=1", {}, "SENTRY-x=1"),
    ],
    ids=[
        "empty",
        "commas",
        "no-value",
        "no-key",
        "bare-prefix",
        "equals-in-value",
        "controls",
        "mixed",
        "repeated",
        "escapes",
        "unicode",
        "prefix-case",
    ],
)
def test_parse_baggage_never_fails(header: str, sentry: dict[str, str], others: str) -> None:
    """Odd headers: entries that are not ``key=value`` are dropped, the rest sorted into sentry's and the others."""
    result = parse_baggage(header)
    assert result == (sentry, others)
    check_baggage_rules(header, *result)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("sentry-=,; %2Bx\x00\u00e9"), max_size=40) | st.text(max_size=40))
def test_parse_baggage_follows_its_rules_for_any_text(header: str) -> None:
    check_baggage_rules(header, *parse_baggage(header))


def test_continue_trace_links_feedback_and_errors_and_freezes_dsc() -> None:
    transport = MockTransport()
    sf.init(transport=transport, dsn="http://public@127.0.0.1:9/1", release="shop@2")
    headers = {"Sentry-Trace": f"{TRACE}-{SPAN}-1", "Baggage": BAGGAGE}
    with sf.continue_trace(headers) as scope:
        assert scope is sf.get_isolation_scope()
        error_id = sf.capture_message("payment failed", level="error")
        sf.capture_feedback("it broke", associated_event_id=error_id)
        outgoing = sf.get_traceparent()
        baggage = sf.get_baggage()
    assert sf.flush(5)
    traces = [env.items[0].get_json()["contexts"]["trace"] for env in transport.envelopes]
    assert {t["trace_id"] for t in traces} == {TRACE}
    assert {t["parent_span_id"] for t in traces} == {SPAN}
    our_span = traces[0]["span_id"]
    assert our_span != SPAN
    assert outgoing == f"{TRACE}-{our_span}-1"
    for envelope in transport.envelopes:
        # The incoming DSC is passed on unchanged (frozen): no release of ours in it.
        assert envelope.headers["trace"] == {
            "trace_id": TRACE,
            "public_key": "49d0f7386ad645858ae85020e393bef3",
            "sample_rate": "0.01337",
            "user_id": "Amélie",
        }
    assert "sentry-user_id=Am%C3%A9lie" in baggage
    assert "other-vendor-value-1=foo;bar;baz" in baggage
    # Outside the block the process's own trace is back.
    assert not sf.get_traceparent().startswith(TRACE)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"sentry-trace": "garbage", "baggage": "sentry-trace_id=zzz"},
        {"sentry-trace": f"{TRACE}-{SPAN}-9"},
        {"traceparent": "00-bad"},
        {"baggage": BAGGAGE},  # baggage without a trace header is not a trace
    ],
)
def test_malformed_headers_start_a_new_trace(headers: dict[str, str]) -> None:
    transport = MockTransport()
    sf.init(transport=transport, dsn="http://public@127.0.0.1:9/1", release="r")
    with sf.continue_trace(headers):
        sf.capture_feedback("x")
        sentry_trace = sf.get_traceparent()
    assert sf.flush(5)
    (envelope,) = transport.envelopes
    trace = envelope.items[0].get_json()["contexts"]["trace"]
    assert trace["trace_id"] != TRACE and "parent_span_id" not in trace
    assert re.fullmatch(r"[0-9a-f]{32}-[0-9a-f]{16}", sentry_trace)  # new trace: sampling deferred
    header = envelope.headers["trace"]
    assert header["trace_id"] == trace["trace_id"]
    assert header["public_key"] == "public" and header["release"] == "r"
    assert 0.0 <= float(header["sample_rand"]) < 1.0


def test_w3c_traceparent_is_continued() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    with sf.continue_trace({"traceparent": f"00-{TRACE}-{SPAN}-01"}):
        sf.capture_feedback("x")
        headers = sf.get_trace_headers(w3c=True)
    assert sf.flush(5)
    assert transport.feedback[0]["contexts"]["trace"]["trace_id"] == TRACE
    assert headers["traceparent"].startswith(f"00-{TRACE}-")
    assert headers["traceparent"].endswith("-01")
    assert headers["sentry-trace"].startswith(TRACE)


def test_environment_variables_work_as_headers() -> None:
    sf.init(transport=MockTransport())
    with sf.continue_trace({"SENTRY_TRACE": f"{TRACE}-{SPAN}", "SENTRY_BAGGAGE": "sentry-release=up"}):
        assert sf.get_traceparent().startswith(TRACE)
        assert "sentry-release=up" in sf.get_baggage()


def test_sample_rand_is_consistent_with_the_incoming_decision() -> None:
    sf.init(transport=MockTransport())
    for sampled, low, high in (("1", 0.0, 0.25), ("0", 0.25, 1.0)):
        with sf.continue_trace({"sentry-trace": f"{TRACE}-{SPAN}-{sampled}", "baggage": "sentry-sample_rate=0.25"}):
            context = sf.get_isolation_scope().propagation_context
            assert context is not None and low <= context.sample_rand < high


def test_new_trace_and_task_isolation() -> None:
    sf.init(transport=MockTransport())
    before = sf.get_traceparent()
    sf.new_trace()
    assert sf.get_traceparent()[:32] != before[:32]

    async def request(trace_id: str) -> str:
        with sf.continue_trace({"sentry-trace": f"{trace_id}-{SPAN}"}):
            await asyncio.sleep(0)  # let the other task run inside its own trace
            return sf.get_traceparent()[:32]

    async def main() -> list[str]:
        return list(await asyncio.gather(request("a" * 32), request("b" * 32)))

    assert asyncio.run(main()) == ["a" * 32, "b" * 32]


def test_wsgi_environ_works_as_headers() -> None:
    sf.init(transport=MockTransport())
    environ = {"REQUEST_METHOD": "GET", "HTTP_SENTRY_TRACE": f"{TRACE}-{SPAN}-1", "HTTP_BAGGAGE": "sentry-release=up"}
    with sf.continue_trace(environ):
        assert sf.get_traceparent().startswith(TRACE)
        assert sf.get_traceparent().endswith("-1")


def test_a_sentry_entry_without_a_name_is_dropped() -> None:
    assert parse_baggage("sentry-=x,sentry-release=1.0,other=y") == ({"release": "1.0"}, "other=y")
