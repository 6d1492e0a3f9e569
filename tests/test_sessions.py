"""Release health: application-mode sessions, the session API, sending, fork and shutdown."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sentry_feedback as sf
from forking import fork_running, wait_exit
from sentry_feedback import TransportResponse
from sentry_feedback._sessions import Session, SessionFlusher
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport, check_session_item

DSN = "http://public@127.0.0.1:9/1"
Init = Callable[..., sf.Client]


def start(transport: MockTransport | None = None, **options: Any) -> MockTransport:
    transport = transport or MockTransport()
    options.setdefault("release", "app@2.0")
    sf.init(dsn=DSN, transport=transport, default_integrations=False, **options)
    return transport


def updates(transport: MockTransport) -> list[dict[str, Any]]:
    sf.flush(5)
    return [item.get_json() for envelope in transport.envelopes for item in envelope.items if item.type == "session"]


def test_application_mode_sends_the_process_session_at_close() -> None:
    transport = start(session_mode="application")
    session = sf.get_isolation_scope().session
    assert session is not None and session.status == "ok"
    sf.close()
    (update,) = updates(transport)
    assert update["sid"] == session.sid and str(uuid.UUID(update["sid"])) == update["sid"]
    assert update["status"] == "exited" and update["init"] is True and update["errors"] == 0
    assert update["attrs"] == {"release": "app@2.0", "environment": "production"}
    assert update["duration"] >= 0


def test_errors_count_and_an_unhandled_one_crashes_the_session() -> None:
    transport = start(session_mode="application", send_default_pii=True)
    sf.set_user({"id": "42", "ip_address": "192.0.2.1"})
    sf.capture_message("just info")  # not an error
    sf.capture_message("bad", "error")
    try:
        raise ValueError("handled")
    except ValueError:
        sf.capture_exception()
    sf.get_client().capture_exception(KeyError("unhandled"), handled=False)
    sf.capture_message("after the crash", "error")  # the session has ended: not counted
    sent = updates(transport)
    final = sent[-1]
    assert final["status"] == "crashed" and final["errors"] == 3
    assert final["did"] == "42" and final["attrs"]["ip_address"] == "192.0.2.1"
    assert [u["init"] for u in sent] == [True] + [False] * (len(sent) - 1)
    for update in sent:
        check_session_item("session", update)


def test_start_end_and_capture_session() -> None:
    transport = start()  # request mode: no session for the process
    assert sf.get_isolation_scope().session is None
    sf.set_user({"email": "jane@example.com"})
    first = sf.start_session()
    assert first is not None and first.did == "jane@example.com"
    sf.capture_session()
    second = sf.start_session()  # ends and sends the first
    assert second is not None and first.status == "exited"
    sf.capture_session(end=True)
    assert second.status == "exited" and sf.get_isolation_scope().session is None
    sf.end_session()  # nothing to end
    sf.capture_session()  # nothing to send
    by_sid: dict[str, list[dict[str, Any]]] = {}
    for update in updates(transport):
        by_sid.setdefault(update["sid"], []).append(update)
    assert list(by_sid) == [first.sid, second.sid]
    for sent in by_sid.values():
        # Updates waiting together go as one (the latest); the first one sent of a session is init.
        assert sent[-1]["status"] == "exited"
        assert [u["init"] for u in sent] == [True] + [False] * (len(sent) - 1)


def test_sessions_are_sent_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sentry_feedback._sessions.FLUSH_INTERVAL", 0.05)
    transport = start()
    sf.start_session()
    assert transport.wait_for(1, timeout=5)  # without a flush()
    (envelope,) = transport.envelopes
    assert [i.type for i in envelope.items] == ["session"]


def test_sessions_need_a_release(caplog: pytest.LogCaptureFixture) -> None:
    transport = start(release=None, session_mode="application")
    assert sf.get_isolation_scope().session is None
    assert sf.start_session() is None
    assert "sessions need a release" in caplog.text
    sf.close()
    assert updates(transport) == []


def test_no_session_before_init_or_after_close() -> None:
    assert sf.start_session() is None
    transport = start()
    sf.close()
    assert sf.start_session() is None
    assert transport.envelopes == []


def test_a_scope_fork_shares_its_session() -> None:
    transport = start()
    session = sf.start_session()
    with sf.with_isolation_scope(), sf.with_scope():
        sf.capture_message("in a fork", "error")
    assert session is not None and session.errors == 1
    sf.end_session()
    assert updates(transport)[-1]["errors"] == 1


def test_rate_limited_sessions_are_counted() -> None:
    def limited(envelope: sf.Envelope) -> TransportResponse:
        return TransportResponse(429, {"X-Sentry-Rate-Limits": "60:session"})

    transport = start(MockTransport(limited))
    sf.start_session()
    sf.flush(5)
    sf.start_session()
    sf.flush(5)
    assert len(transport.envelopes) == 1
    assert sf.get_client().client_reports.totals() == {("ratelimit_backoff", "session"): 2}


def test_many_session_updates_are_split_into_envelopes_of_100() -> None:
    sent: list[sf.Envelope] = []
    flusher = SessionFlusher(
        release="a@1", environment=None, submit=lambda e: sent.append(e) or True, schedule=lambda fn, d: None
    )
    for _ in range(250):
        flusher.add_session(Session(release="a@1", environment=None))
    flusher.flush()
    assert [len(e.items) for e in sent] == [100, 100, 50]
    assert not flusher.pending()


@pytest.mark.parametrize("bad", [42, object(), b"bytes"])
def test_bad_arguments_never_raise(bad: Any, caplog: pytest.LogCaptureFixture) -> None:
    start()
    sf.set_conversation_id(bad)
    sf.add_integration(bad)
    sf.capture_session(end=bad)
    session = Session(release="a@1", environment=None, user={"id": bad})
    session.close(bad)
    assert session.status == "exited"
    check_session_item("session", session.to_json())


@settings(max_examples=50, deadline=None)
@given(
    user=st.dictionaries(
        st.sampled_from(["id", "email", "username", "ip_address", "other"]),
        st.none() | st.integers() | st.text(max_size=300),
        max_size=4,
    ),
    errors=st.integers(min_value=0, max_value=5),
    status=st.sampled_from(["exited", "crashed", "abnormal", "nonsense"]),
)
def test_any_session_is_valid_for_sentry(user: dict[str, Any], errors: int, status: str) -> None:
    session = Session(release="app@2.0", environment="production", user=user)
    for _ in range(errors):
        session.record_error()
    check_session_item("session", session.to_json())
    session.close(status)
    payload = session.to_json()
    check_session_item("session", payload)
    assert payload["errors"] == errors and payload["status"] in ("exited", "crashed", "abnormal")


# -- fork and shutdown ---------------------------------------------------------------------------------

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
@pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_a_forked_child_sends_its_own_sessions_not_the_parents(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init(release="app@2.0", session_mode="application")
    parent = sf.get_isolation_scope().session
    assert parent is not None
    sf.capture_message("parent error", "error")  # pending in the parent's flusher

    def child() -> int:
        inherited = sf.get_isolation_scope().session
        pending = sf.get_client().sessions
        if inherited is not None or pending is None or pending.pending():
            return 3
        session = sf.start_session()
        sf.capture_message("child error", "error")
        sf.end_session()
        # Closing in the child (as its exit does) leaves the parent's session alone.
        return 0 if session is not None and sf.close(5) else 4

    assert wait_exit(fork_running(child)) == 0
    sf.close(5)
    sids: dict[str, list[dict[str, Any]]] = {}
    for request in sentry_receiver.received:
        if request.envelope is None:
            continue
        for item in request.envelope.items:
            if item.type == "session":
                payload = item.get_json()
                sids.setdefault(payload["sid"], []).append(payload)
    assert len(sids) == 2
    child_updates = next(u for sid, u in sids.items() if sid != parent.sid)
    assert [u["status"] for u in child_updates] == ["exited"] and child_updates[0]["errors"] == 1
    assert [u["status"] for u in sids[parent.sid]] == ["exited"] and sids[parent.sid][-1]["errors"] == 1


def test_a_new_init_sends_what_the_old_client_held() -> None:
    first = start(session_mode="application")
    old_session = sf.get_isolation_scope().session
    assert old_session is not None
    sf.capture_message("counted", "error")
    second = start()  # request mode: no process session from this one
    assert old_session.status == "exited"
    assert first.wait_for(2, timeout=5)  # the error, then the session
    sent = [i.get_json() for e in first.envelopes for i in e.items if i.type == "session"]
    assert sent[-1]["sid"] == old_session.sid and sent[-1]["status"] == "exited" and sent[-1]["errors"] == 1
    assert updates(second) == []


@pytest.mark.parametrize("pii", [False, True])
def test_the_ip_address_is_kept_only_with_send_default_pii(pii: bool) -> None:
    transport = start(send_default_pii=pii)
    sf.set_user({"id": "1", "ip_address": "192.0.2.7"})
    sf.start_session()
    sf.capture_message("oops", "error")
    sf.end_session()
    (update,) = updates(transport)
    assert ("ip_address" in update["attrs"]) is pii


def test_a_user_set_after_the_start_is_the_sessions() -> None:
    transport = start(session_mode="application")
    sf.set_user({"username": "jane"})
    sf.set_user({"id": "7"})
    sf.close()
    (update,) = updates(transport)
    assert update["did"] == "7"
