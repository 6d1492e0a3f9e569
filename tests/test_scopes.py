"""Scopes: forks never leak into their parent, other threads or other asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import sentry_feedback as sf
from sentry_feedback.testing import MockTransport


def test_with_scope_does_not_leak_into_parent() -> None:
    sf.get_current_scope().set_tag("outer", "1")
    with sf.with_scope() as scope:
        assert scope is sf.get_current_scope()
        scope.set_tag("inner", "2")
        scope.set_user({"id": "in"})
        scope.add_breadcrumb(message="inside")
        scope.add_attachment(b"x", filename="x.txt")
        assert scope.tags == {"outer": "1", "inner": "2"}
    parent = sf.get_current_scope()
    assert parent.tags == {"outer": "1"}
    assert parent.user is None
    assert parent.breadcrumbs == []
    assert parent.attachments == []


def test_with_isolation_scope_forks_both_and_restores() -> None:
    root_iso, root_cur = sf.get_isolation_scope(), sf.get_current_scope()
    sf.set_tag("before", "yes")
    with sf.with_isolation_scope() as iso:
        assert iso is sf.get_isolation_scope() and iso is not root_iso
        assert sf.get_current_scope() is not root_cur
        sf.set_tag("request", "42")
        assert iso.tags == {"before": "yes", "request": "42"}
        assert iso.propagation_context == root_iso.propagation_context
    assert sf.get_isolation_scope() is root_iso
    assert root_iso.tags == {"before": "yes"}


def test_nested_forks_restore_in_order() -> None:
    with sf.with_scope() as a:
        a.set_tag("level", "a")
        with sf.with_scope() as b:
            b.set_tag("level", "b")
            assert sf.get_current_scope().tags["level"] == "b"
        assert sf.get_current_scope().tags["level"] == "a"


def test_fork_in_one_thread_is_invisible_to_another() -> None:
    inside = threading.Event()
    checked = threading.Event()
    seen: dict[str, Any] = {}

    def worker() -> None:
        with sf.with_scope() as scope:
            scope.set_tag("thread", "worker")
            with sf.with_isolation_scope():
                sf.set_user({"id": "worker"})
                inside.set()
                checked.wait(5)
        seen["after"] = sf.get_current_scope().tags

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(5)
    seen["main_current"] = sf.get_current_scope().tags
    seen["main_user"] = sf.get_isolation_scope().user
    checked.set()
    thread.join(5)
    assert seen["main_current"] == {}
    assert seen["main_user"] is None
    assert seen["after"] == {}


def test_concurrent_threads_each_send_their_own_data() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    barrier = threading.Barrier(8)

    def request(n: int) -> None:
        with sf.with_isolation_scope():
            sf.set_user({"id": str(n)})
            sf.set_tag("n", n)
            barrier.wait(5)
            sf.capture_feedback(f"from {n}")

    threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sf.flush(5)
    pairs = {(e["contexts"]["feedback"]["message"], e["user"]["id"], e["tags"]["n"]) for e in transport.feedback}
    assert pairs == {(f"from {i}", str(i), str(i)) for i in range(8)}


def test_asyncio_tasks_are_isolated() -> None:
    transport = MockTransport()
    sf.init(transport=transport)

    async def handler(n: int, both_inside: asyncio.Event, counter: list[int]) -> str | None:
        with sf.with_isolation_scope():
            sf.set_user({"id": f"user{n}"})
            with sf.with_scope() as scope:
                scope.set_tag("task", n)
                counter.append(n)
                if len(counter) == 2:
                    both_inside.set()
                await asyncio.wait_for(both_inside.wait(), 5)  # both tasks are inside their forks
                return sf.capture_feedback(f"task {n}")

    async def main() -> None:
        both_inside = asyncio.Event()
        counter: list[int] = []
        await asyncio.gather(handler(1, both_inside, counter), handler(2, both_inside, counter))
        assert sf.get_current_scope().tags == {}
        assert sf.get_isolation_scope().user is None

    asyncio.run(main())
    assert sf.flush(5)
    got = {(e["user"]["id"], e["tags"]["task"]) for e in transport.feedback}
    assert got == {("user1", "1"), ("user2", "2")}


def test_scope_argument_replaces_current_scope() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    sf.get_current_scope().set_tag("from", "current")
    custom = sf.Scope()
    custom.set_tag("from", "custom")
    sf.capture_feedback("x", scope=custom)
    assert sf.flush(5)
    assert transport.feedback[0]["tags"] == {"from": "custom"}


def test_trace_context_from_isolation_scope() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    context = sf.PropagationContext(trace_id="a" * 32, span_id="b" * 16)
    with sf.with_isolation_scope() as iso:
        iso.set_propagation_context(context)
        sf.capture_feedback("x")
        sf.capture_message("m")
    assert sf.flush(5)
    traces = [item.get_json()["contexts"]["trace"] for env in transport.envelopes for item in env.items]
    assert traces == [{"trace_id": "a" * 32, "span_id": "b" * 16}] * 2


def test_breadcrumbs_ring_buffer_honours_max_breadcrumbs() -> None:
    transport = MockTransport()
    sf.init(transport=transport, max_breadcrumbs=3)
    for i in range(10):
        sf.add_breadcrumb(message=f"crumb {i}")
    assert [c["message"] for c in sf.get_isolation_scope().breadcrumbs] == ["crumb 7", "crumb 8", "crumb 9"]
    sf.capture_feedback("x")
    assert sf.flush(5)
    assert len(transport.feedback[0]["breadcrumbs"]["values"]) == 3


def test_top_level_setters_write_to_the_isolation_scope() -> None:
    sf.set_tag("t", "v")
    sf.set_tags({"a": 1})
    sf.set_extra("e", 1)
    sf.set_extras({"f": 2})
    sf.set_context("c", {"k": "v"})
    sf.set_user({"id": "u"})
    sf.set_level("warning")
    iso = sf.get_isolation_scope()
    assert iso.tags == {"t": "v", "a": "1"}
    assert iso.extras == {"e": 1, "f": 2}
    assert iso.contexts == {"c": {"k": "v"}}
    assert iso.user == {"id": "u"}
    assert iso.level == "warning"
    sf.set_context("c", None)
    sf.set_user(None)
    assert iso.contexts == {} and iso.user is None
    sf.set_level("loud")  # type: ignore[arg-type]  # logged and ignored: setters never raise
    assert iso.level == "warning"


def test_scope_level_applies_to_messages_but_feedback_stays_info() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    sf.set_level("warning")
    sf.capture_message("m")
    sf.capture_message("explicit", level="error")
    sf.capture_feedback("f")
    assert sf.flush(5)
    assert [e["level"] for e in transport.events] == ["warning", "error"]
    assert transport.feedback[0]["level"] == "info"


def test_hook_editing_contexts_does_not_edit_the_scope() -> None:
    transport = MockTransport()

    def scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        event["contexts"]["account"]["token"] = "[Filtered]"
        return event

    sf.init(transport=transport, before_send_feedback=scrub)
    sf.set_context("account", {"token": "secret"})
    sf.capture_feedback("x")
    assert sf.get_isolation_scope().contexts["account"] == {"token": "secret"}
