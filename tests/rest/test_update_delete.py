"""``PATCH`` (status) and ``DELETE`` of one feedback, alone and from many threads at once."""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict
from typing import Any

import pytest

from sentry_feedback.server import LocalReceiver

from .conftest import (
    ALL_TIME,
    MOBILE,
    SEED_PATCH_BODY,
    WEB,
    Api,
    assert_bad_request,
    assert_seed_item,
    event_id,
    feedback_event,
    item_path,
    store_feedback,
    store_raw,
)

FEEDBACK = event_id(1)
OTHER = event_id(2)


@pytest.fixture
def two(server: LocalReceiver) -> LocalReceiver:
    """Two feedback in project web, each with two attachments."""
    for number, feedback_id in ((1, FEEDBACK), (2, OTHER)):
        store_feedback(server, WEB, feedback_id, feedback_event(f"feedback {number}", timestamp=1_700_000_000 + number))
        attachments = [({"type": "attachment", "filename": f"{name}.txt"}, name.encode() * 10) for name in ("a", "b")]
        store_raw(server, WEB, {"event_id": feedback_id}, attachments)
    return server


def test_patch_resolves_and_unresolves(two: LocalReceiver, api: Api) -> None:
    path = item_path(WEB.slug, FEEDBACK)
    reply = api.request("PATCH", path, json_body=SEED_PATCH_BODY)  # the seed's own request
    assert reply.status == 202
    assert_seed_item(reply.item)
    assert reply.item["status"] == "resolved"
    assert api.get(path).item == reply.item
    assert api.browse({"statsPeriod": ALL_TIME, "query": "status:resolved"}).ids == [FEEDBACK]
    again = api.patch(WEB.slug, FEEDBACK, "resolved")  # idempotent
    assert (again.status, again.item["status"]) == (202, "resolved")
    back = api.patch(WEB.slug, FEEDBACK, "unresolved")
    assert (back.status, back.item["status"]) == (202, "unresolved")
    assert {f.status for f in two.store.list_feedback()} == {"unresolved"}
    bare = api.request("PATCH", path, json_body={"status": "resolved"})  # the object without "data" too
    assert (bare.status, bare.item["status"]) == (202, "resolved")
    assert two.store.get_feedback(OTHER).status == "unresolved"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"status": "done"}},
        {"data": {"status": "Resolved"}},
        {"data": {"status": " resolved"}},
        {"data": {"status": None}},
        {"data": {"status": 1}},
        {"data": {"status": ["resolved"]}},
        {"data": {}},
        {"data": {"status": "resolved", "message": "rewritten"}},
        {"data": {"message": "rewritten"}},
        {"data": []},
        {"data": "resolved"},
        {"data": None},
        [],
        "resolved",
        None,
        {"status": "resolved", "id": FEEDBACK},
    ],
    ids=json.dumps,
)
def test_a_bad_patch_is_a_400_and_changes_nothing(two: LocalReceiver, api: Api, body: Any) -> None:
    reply = api.request("PATCH", item_path(WEB.slug, FEEDBACK), body=json.dumps(body).encode())
    assert_bad_request(reply)
    stored = two.store.get_feedback(FEEDBACK)
    assert stored is not None and (stored.status, stored.message) == ("unresolved", "feedback 1")


@pytest.mark.parametrize("body", [b"", b"{", b"\xff", b"[" * 100_000, b'{"data": {"status": "\\ud800"}}'])
def test_a_patch_body_that_is_not_json_is_a_400(two: LocalReceiver, api: Api, body: bytes) -> None:
    assert_bad_request(api.request("PATCH", item_path(WEB.slug, FEEDBACK), body=body))
    assert two.store.get_feedback(FEEDBACK).status == "unresolved"  # type: ignore[union-attr]


def test_delete_removes_the_feedback_and_its_attachments(two: LocalReceiver, api: Api) -> None:
    path = item_path(WEB.slug, FEEDBACK)
    attachment_ids = [a.id for a in two.store.list_attachments(FEEDBACK)]
    assert len(attachment_ids) == 2
    reply = api.delete(WEB.slug, FEEDBACK)
    assert reply.status == 204
    assert reply.data == b""
    assert two.store.get_feedback(FEEDBACK) is None
    assert two.store.list_attachments(FEEDBACK) == []
    assert all(two.store.get_attachment(a) is None for a in attachment_ids)
    for method in ("GET", "DELETE"):
        assert api.request(method, path).status == 404
    assert api.patch(WEB.slug, FEEDBACK, "resolved").status == 404
    assert api.get(path + "attachments/").status == 404
    for attachment in attachment_ids:
        assert api.get(f"{path}attachments/{attachment}/").status == 404
    assert api.browse({"statsPeriod": ALL_TIME}).ids == [OTHER]
    # The other feedback keeps its attachments.
    assert len(api.get(item_path(WEB.slug, OTHER) + "attachments/").json()["data"]) == 2


def test_a_created_feedback_can_be_deleted_and_its_id_used_again(api: Api) -> None:
    created = api.create({"message": "short-lived", "project": "mobile"})
    feedback_id = created.item["id"]
    assert api.delete(MOBILE.slug, feedback_id).status == 204
    assert api.create({"message": "again", "id": feedback_id, "project": "mobile"}).status == 201


def test_concurrent_patches_and_deletes_stay_consistent(server: LocalReceiver) -> None:
    """24 threads PATCH and DELETE 12 feedback (in both projects) at once: never a 500, and the end state agrees
    with the answers."""
    targets: list[tuple[str, str]] = []
    for number in range(12):
        project = (WEB, MOBILE)[number % 2]
        feedback_id = event_id(100 + number)
        store_feedback(server, project, feedback_id, feedback_event(f"busy {number}", timestamp=1_700_000_000))
        store_raw(server, project, {"event_id": feedback_id}, [({"type": "attachment", "filename": "f.bin"}, b"x")])
        targets.append((project.slug, feedback_id))
    answers: dict[str, list[tuple[str, int, str | None]]] = defaultdict(list)
    lock = threading.Lock()
    start = threading.Barrier(24)
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        chooser = random.Random(seed)
        client = Api(server)
        try:
            start.wait(timeout=10)
            for _ in range(25):
                slug, feedback_id = chooser.choice(targets[:4] if seed % 2 else targets)  # some contend more
                if chooser.random() < 0.15:
                    reply, action = client.delete(slug, feedback_id), "delete"
                else:
                    action = chooser.choice(["resolved", "unresolved"])
                    reply = client.patch(slug, feedback_id, action)
                status = reply.item["status"] if reply.status == 202 else None
                with lock:
                    answers[feedback_id].append((action, reply.status, status))
        except BaseException as exc:  # reported by the test
            failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)

    api = Api(server)
    survivors = set()
    for slug, feedback_id in targets:
        seen = answers[feedback_id]
        assert {status for _, status, _ in seen} <= {202, 204, 404}, seen
        for action, status, shown in seen:
            if status == 202:
                assert action in ("resolved", "unresolved") and shown in ("resolved", "unresolved")
            if status == 204:
                assert action == "delete"
        deleted = [status for action, status, _ in seen if action == "delete" and status == 204]
        assert len(deleted) <= 1, seen
        stored = server.store.get_feedback(feedback_id)
        if deleted:
            assert stored is None
            assert api.get(item_path(slug, feedback_id)).status == 404
            assert server.store.list_attachments(feedback_id) == []
        else:
            assert stored is not None, seen
            survivors.add(feedback_id)
            assert all(status == 202 for action, status, _ in seen if action != "delete"), seen
            assert all(status == 404 for action, status, _ in seen if action == "delete") or not seen
            patched = {action for action, status, _ in seen if status == 202}
            assert stored.status in (patched or {"unresolved"})
            assert api.get(item_path(slug, feedback_id)).item["status"] == stored.status
            assert len(server.store.list_attachments(feedback_id)) == 1
    listed = api.browse({"statsPeriod": ALL_TIME, "per_page": "100"})
    assert set(listed.ids) == survivors and listed.hits == len(survivors)
    assert sum(len(seen) for seen in answers.values()) == 24 * 25
    api.close()


def test_a_patch_answers_with_the_status_it_set_even_under_contention(server: LocalReceiver) -> None:
    """16 threads resolve and unresolve one feedback at once: each 202 shows the status that request set."""
    store_feedback(server, WEB, FEEDBACK, feedback_event("contended", timestamp=1_700_000_000))
    start = threading.Barrier(16)
    wrong: list[tuple[str, str]] = []
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        client = Api(server)
        try:
            start.wait(timeout=10)
            for round_ in range(20):
                wanted = ("resolved", "unresolved")[(seed + round_) % 2]
                reply = client.patch(WEB.slug, FEEDBACK, wanted)
                assert reply.status == 202, reply.data
                if reply.item["status"] != wanted:
                    wrong.append((wanted, reply.item["status"]))
        except BaseException as exc:  # reported by the test
            failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    assert not wrong, f"{len(wrong)} of 320 answers showed another request's status, e.g. {wrong[:3]}"
