"""Paging by ``Link`` cursors: every item exactly once and in order, also while new feedback keeps arriving."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sentry_feedback.server import ApiToken, LocalReceiver, Project, ServerConfig
from sentry_feedback.server._records import StoredFeedback

from .conftest import (
    ALL_TIME,
    CONFIG,
    MOBILE,
    ORG,
    TOKEN,
    WEB,
    Api,
    Reply,
    event_id,
    feedback_event,
    now,
    stop_later,
    store_feedback,
)

TOTAL = 250
SORTS = ["-timestamp", "timestamp", "projectId", "-projectId"]


def sort_key(feedback: StoredFeedback, sort: str) -> tuple[float, ...]:
    """Where a feedback stands in ``sort``: ties are broken by arrival (the reverse for ``timestamp``)."""
    ts, arrived, project = float(feedback.timestamp or 0), feedback.id, int(feedback.project_id)
    return {
        "-timestamp": (-ts, arrived),
        "timestamp": (ts, -arrived),
        "projectId": (project, -ts, arrived),
        "-projectId": (-project, -ts, arrived),
    }[sort]


def expected_order(server: LocalReceiver, sort: str, ids: set[str] | None = None) -> list[str]:
    stored = [f for f in server.store.list_feedback() if ids is None or f.event_id in ids]
    return [f.event_id for f in sorted(stored, key=lambda f: sort_key(f, sort))]


@pytest.fixture
def full(server: LocalReceiver) -> LocalReceiver:
    """The server with 250 feedback in both projects, in threes with equal timestamps, stored in shuffled order."""
    base = int(now()) - 10_000
    numbers = list(range(TOTAL))
    random.Random(250).shuffle(numbers)
    for number in numbers:
        project = WEB if number % 2 == 0 else MOBILE
        event = feedback_event(f"feedback {number}", timestamp=base - (number // 3) * 7, environment="production")
        store_feedback(server, project, event_id(number + 1), event)
    assert len(server.store.list_feedback()) == TOTAL
    return server


def walk_forward(api: Api, params: dict[str, Any], between: Callable[[], Any] | None = None) -> list[Reply]:
    """The first page, then each ``next`` page while ``results="true"``."""
    pages = [api.browse(params)]
    assert pages[0].links["previous"].results is False
    while pages[-1].links["next"].results:
        if between is not None:
            between()
        page = api.get(pages[-1].links["next"].url)
        assert page.status == 200, page.data
        assert page.links["previous"].results is True
        pages.append(page)
    return pages


def walk_back(api: Api, last: Reply) -> list[Reply]:
    """From ``last``, each ``previous`` page while ``results="true"``; in forward order."""
    pages = [last]
    while pages[-1].links["previous"].results:
        page = api.get(pages[-1].links["previous"].url)
        assert page.status == 200, page.data
        assert page.links["next"].results is True
        pages.append(page)
    assert pages[-1].links["previous"].results is False
    return pages[::-1]


def ids_of(pages: list[Reply]) -> list[str]:
    return [feedback_id for page in pages for feedback_id in page.ids]


@pytest.mark.parametrize("per_page", [100, 7])
@pytest.mark.parametrize("sort", SORTS)
def test_next_and_previous_walk_every_item_once_in_order(
    api: Api, full: LocalReceiver, sort: str, per_page: int
) -> None:
    expected = expected_order(full, sort)
    params = {"statsPeriod": ALL_TIME, "sort": sort, "per_page": str(per_page)}
    pages = walk_forward(api, params)
    assert ids_of(pages) == expected
    assert [len(page.ids) for page in pages] == [len(expected[i : i + per_page]) for i in range(0, TOTAL, per_page)]
    assert all(page.hits == TOTAL for page in pages)
    assert pages[-1].links["next"].results is False
    back = walk_back(api, pages[-1])
    assert [page.ids for page in back] == [page.ids for page in pages]
    assert all(page.hits == TOTAL for page in back)


@pytest.mark.parametrize("per_page", [100, 7])
@pytest.mark.parametrize("sort", SORTS)
def test_new_feedback_arriving_between_pages_never_duplicates_or_skips(
    api: Api, full: LocalReceiver, sort: str, per_page: int
) -> None:
    """The test posts a new feedback (newer than all others, in either project) before each next page."""
    initial = expected_order(full, sort)
    posted: list[str] = []

    def post() -> None:
        reply = api.create({"message": f"new {len(posted)}", "project": (WEB, MOBILE)[len(posted) % 2].slug})
        assert reply.status == 201, reply.data
        posted.append(reply.item["id"])

    pages = walk_forward(api, {"statsPeriod": ALL_TIME, "sort": sort, "per_page": str(per_page)}, between=post)
    assert len(posted) == len(pages) - 1 > 0
    assert_consistent(full, sort, initial, pages, set(posted), quiet_start=True)


@pytest.mark.parametrize("sort", SORTS)
def test_feedback_arriving_from_another_thread_during_the_walk(api: Api, full: LocalReceiver, sort: str) -> None:
    """A thread keeps posting new feedback over its own connection; each page waits for at least one arrival."""
    initial = expected_order(full, sort)
    arrived = threading.Condition()
    posted: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_posting() -> None:
        poster = Api(full)
        try:
            while not stop.is_set():
                reply = poster.create({"message": "arriving", "project": (WEB, MOBILE)[len(posted) % 2].slug})
                assert reply.status == 201, reply.data
                with arrived:
                    posted.append(reply.item["id"])
                    arrived.notify_all()
        except BaseException as exc:  # reported by the test
            failures.append(exc)
            with arrived:
                arrived.notify_all()
        finally:
            poster.close()

    def wait_for_an_arrival() -> None:
        with arrived:
            seen = len(posted)
            assert arrived.wait_for(lambda: len(posted) > seen or failures, timeout=10)

    thread = threading.Thread(target=keep_posting, name="poster")
    thread.start()
    try:
        wait_for_an_arrival()
        pages = walk_forward(api, {"statsPeriod": ALL_TIME, "sort": sort, "per_page": "7"}, between=wait_for_an_arrival)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not failures, failures
    assert not thread.is_alive()
    with arrived:
        new = set(posted)
    assert_consistent(full, sort, initial, pages, new, quiet_start=False)


def assert_consistent(
    server: LocalReceiver, sort: str, initial: list[str], pages: list[Reply], new: set[str], *, quiet_start: bool
) -> None:
    """The walk holds every initial item once, in order, and new ones only where ``sort`` puts them.

    ``quiet_start``: nothing new had arrived when the first page was read.
    """
    walked = ids_of(pages)
    assert len(walked) == len(set(walked)), "an item showed twice"
    assert set(walked) - set(initial) <= new
    assert [i for i in walked if i not in new] == initial, "an item was skipped or moved"
    assert walked == expected_order(server, sort, set(walked)), "the pages are out of order"
    hits = [page.hits for page in pages]
    assert hits == sorted(hits) and hits[0] >= TOTAL
    assert all(len(page.ids) == len(pages[0].ids) for page in pages[:-1])
    if sort == "-timestamp":  # new feedback is newest: only what came before the first page shows, first
        assert walked[-TOTAL:] == initial
        if quiet_start:
            assert walked == initial
    if sort == "timestamp":  # ... and after everything else
        assert walked[:TOTAL] == initial


def test_x_hits_is_the_total_matching_and_filters_page_too(api: Api, full: LocalReceiver) -> None:
    params = {"statsPeriod": ALL_TIME, "project": "mobile", "query": "feedback", "per_page": "9", "sort": "projectId"}
    pages = walk_forward(api, params)
    mobile = {f.event_id for f in full.store.list_feedback(MOBILE.id)}
    assert ids_of(pages) == expected_order(full, "projectId", mobile)
    assert all(page.hits == TOTAL // 2 for page in pages)
    assert api.browse({"statsPeriod": ALL_TIME, "query": "nothing-matches"}).hits == 0


def test_sentry_offset_cursors_are_offsets(api: Api, full: LocalReceiver) -> None:
    expected = expected_order(full, "-timestamp")
    reply = api.browse({"statsPeriod": ALL_TIME, "cursor": "0:30:0"})
    assert reply.ids == expected[30:40]
    assert reply.links["previous"].results is True and reply.links["next"].results is True


def test_the_last_page_says_there_is_no_next(api: Api, full: LocalReceiver) -> None:
    expected = expected_order(full, "-timestamp")
    reply = api.browse({"statsPeriod": ALL_TIME, "per_page": "50", "offset": str(TOTAL - 50)})
    assert reply.ids == expected[-50:]
    assert reply.links["next"].results is False
    assert reply.links["previous"].results is True
    exact = api.browse({"statsPeriod": ALL_TIME, "per_page": "100", "offset": "200"})
    assert exact.ids == expected[200:] and exact.links["next"].results is False


@pytest.fixture
def empty() -> Iterator[Api]:
    local = LocalReceiver(config=CONFIG).start()
    client = Api(local)
    yield client
    client.close()
    stop_later(local)


def test_an_empty_listing_has_no_pages_either_side(empty: Api) -> None:
    reply = empty.browse()
    assert reply.items == [] and reply.hits == 0
    assert reply.links["previous"].results is False and reply.links["next"].results is False


def test_project_ids_sort_as_numbers() -> None:
    """Project 9 comes before project 10 in ``projectId`` order (ids are numbers, not text), on every page."""
    nine, ten = Project("nine", "9", "key9"), Project("ten", "10", "key10")
    local = LocalReceiver(config=ServerConfig(ORG, (nine, ten), (ApiToken(TOKEN),))).start()
    client = Api(local)
    try:
        for number in range(6):
            event = feedback_event(f"in {number % 2}", timestamp=now() - number)
            store_feedback(local, (nine, ten)[number % 2], event_id(number + 1), event)
        for sort, expected in (("projectId", ["9"] * 3 + ["10"] * 3), ("-projectId", ["10"] * 3 + ["9"] * 3)):
            reply = client.browse({"sort": sort, "field": "project_id"})
            assert [item["project_id"] for item in reply.items] == expected, sort
            pages = walk_forward(client, {"sort": sort, "field": ["id", "project_id"], "per_page": "2"})
            assert [item["project_id"] for page in pages for item in page.items] == expected, sort
    finally:
        client.close()
        stop_later(local)
