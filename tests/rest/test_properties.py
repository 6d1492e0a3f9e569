"""Properties over many generated requests (Hypothesis, derandomized): never a 500, pages always consistent."""

from __future__ import annotations

import itertools
import re
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sentry_feedback.server import LocalReceiver

from .conftest import (
    ALL_TIME,
    CONFIG,
    HYPOTHESIS,
    INDEX,
    MOBILE,
    WEB,
    Api,
    Catalog,
    feedback_event,
    store_feedback,
)

_POSITION = re.compile(r"Invalid query at position (\d+): expected .+", re.S)
_SYNTAX = ':!<>=[]",*\\ -+.()_%' + "'" + string.ascii_letters[:8] + string.digits[:4]
_KEYS = st.sampled_from(
    ["status", "message", "environment", "tags[a]", "tags[", "has", "!has", "timestamp", "user.email", "count", "id"]
)
_OPERATORS = st.sampled_from(["", "!=", ">", ">=", "<", "<=", "=", "=>", "!"])
_VALUES = st.one_of(
    st.text(alphabet=_SYNTAX, max_size=8),
    st.sampled_from(["-24h", "+7d", "2024-01-01", "2024-01-01T00:00:00Z", "[a, b]", '"a b"', "*pay*", "2k", "[]"]),
)
_TERMS = st.builds(lambda n, k, o, v: ("!" if n else "") + f"{k}:{o}{v}", st.booleans(), _KEYS, _OPERATORS, _VALUES)
_QUERIES = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=_SYNTAX, max_size=40),
    st.lists(st.one_of(_TERMS, st.text(alphabet=_SYNTAX, min_size=1, max_size=6)), max_size=6).map(" ".join),
)


def test_any_query_is_an_answer_or_a_400_naming_a_position(catalog: Catalog) -> None:
    api = Api(catalog.server)

    @HYPOTHESIS
    @given(query=_QUERIES)
    def check(query: str) -> None:
        reply = api.get(INDEX, {"query": query, "statsPeriod": ALL_TIME, "per_page": "100"})
        assert reply.status in (200, 400), (query, reply.status)
        if reply.status == 400:
            match = _POSITION.fullmatch(reply.detail)
            assert match, reply.detail
            assert 0 <= int(match.group(1)) <= len(query)
        else:
            assert reply.hits == len(reply.items) <= len(catalog.rows)

    check()
    api.close()


_PARAMETERS = ["field", "environment", "project", "sort", "statsPeriod", "start", "end", "per_page", "offset"]
_PARAMETERS += ["cursor", "query", "queryReferrer", "unknown"]
_PARAMETER_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["0", "1", "-1", "100", "101", "7d", "web", "2", "-timestamp", "projectId", "id", "0:0:1"]),
    st.sampled_from(["2024-01-01", "2024-01-01T00:00:00Z", "1.5:3:0", "2,1e300:9:0", "inf:1:0", "-inf:1:1"]),
)


def test_any_parameters_are_an_answer_or_a_400(catalog: Catalog) -> None:
    api = Api(catalog.server)

    @HYPOTHESIS
    @given(params=st.lists(st.tuples(st.sampled_from(_PARAMETERS), _PARAMETER_VALUES), max_size=6))
    def check(params: list[tuple[str, str]]) -> None:
        reply = api.get(INDEX, params)
        assert reply.status in (200, 400), (params, reply.status, reply.data[:200])
        if reply.status == 200:
            assert 0 <= len(reply.items) <= reply.hits or reply.items == []
            reply.links  # noqa: B018 - well formed
        for method in ("HEAD",):
            assert api.request(method, INDEX, params).status == reply.status

    check()
    api.close()


def test_any_per_page_offset_and_sort_give_consistent_pages(catalog: Catalog) -> None:
    api = Api(catalog.server)
    sorts = ["-timestamp", "timestamp", "projectId", "-projectId"]
    full = {sort: api.browse({"statsPeriod": ALL_TIME, "per_page": "100", "sort": sort}).ids for sort in sorts}
    total = len(catalog.rows)

    @HYPOTHESIS
    @given(per_page=st.integers(1, 100), offset=st.integers(0, 40), sort=st.sampled_from(sorts))
    def check(per_page: int, offset: int, sort: str) -> None:
        params = {"statsPeriod": ALL_TIME, "per_page": str(per_page), "offset": str(offset), "sort": sort}
        reply = api.browse(params)
        assert reply.ids == full[sort][offset : offset + per_page]
        assert reply.hits == total
        links = reply.links
        assert links["next"].results is (offset + per_page < total)
        if reply.items:
            assert links["previous"].results is (offset > 0)
        if links["next"].results:
            following = api.get(links["next"].url)
            assert following.ids == full[sort][offset + per_page : offset + 2 * per_page]
        if reply.items and links["previous"].results:
            before = api.get(links["previous"].url)
            assert before.ids == full[sort][max(offset - per_page, 0) : offset]

    check()
    api.close()


_STAMPS = st.sampled_from([0.0, 1.5, -1.5, 1e-300, 0.1 + 0.2, 1e15, 1e300, 1700000000.123456, 1700000000.1234567])


def test_walking_any_timestamps_gives_each_item_once_in_order() -> None:
    """Ties, negative, tiny and huge timestamps: the cursors keep their keys exactly."""
    counter = itertools.count(1)
    with LocalReceiver(config=CONFIG) as server:
        api = Api(server)

        @HYPOTHESIS
        @given(
            stamps=st.lists(st.tuples(_STAMPS, st.booleans()), min_size=1, max_size=25),
            sort=st.sampled_from(["-timestamp", "timestamp", "projectId", "-projectId"]),
            per_page=st.integers(1, 6),
        )
        def check(stamps: list[tuple[float, bool]], sort: str, per_page: int) -> None:
            environment = f"example-{next(counter)}"
            ids = []
            for stamp, mobile in stamps:
                feedback_id = f"{next(counter):032x}"
                event = feedback_event("walk", timestamp=stamp, environment=environment)
                store_feedback(server, MOBILE if mobile else WEB, feedback_id, event)
                ids.append(feedback_id)
            stored = [f for f in server.store.list_feedback() if f.environment == environment]
            expected = [f.event_id for f in sorted(stored, key=lambda f: _key(f, sort))]
            params: dict[str, Any] = {
                "statsPeriod": ALL_TIME,
                "environment": environment,
                "sort": sort,
                "per_page": str(per_page),
            }
            pages = [api.browse(params)]
            while pages[-1].links["next"].results:
                pages.append(api.get(pages[-1].links["next"].url))
            assert [i for page in pages for i in page.ids] == expected
            back = [pages[-1]]
            while back[-1].links["previous"].results:
                back.append(api.get(back[-1].links["previous"].url))
            assert [page.ids for page in back[::-1]] == [page.ids for page in pages]

        check()
        api.close()


def _key(feedback: Any, sort: str) -> tuple[float, ...]:
    ts, arrived, project = float(feedback.timestamp), feedback.id, int(feedback.project_id)
    return {
        "-timestamp": (-ts, arrived),
        "timestamp": (ts, -arrived),
        "projectId": (project, -ts, arrived),
        "-projectId": (-project, -ts, arrived),
    }[sort]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_CREATE_KEYS = ["message", "id", "error_ids", "trace_ids", "replay_id", "timestamp", "user", "tags", "browser", "os"]
_CREATE_KEYS += ["device", "locale", "sdk", "request", "contact_email", "url", "environment", "release", "project"]


def test_any_create_body_is_created_or_a_400() -> None:
    with LocalReceiver(config=CONFIG) as server:
        api = Api(server)

        @HYPOTHESIS
        @given(
            data=st.dictionaries(st.sampled_from(_CREATE_KEYS), _JSON, max_size=8),
            message=st.none() | st.text(max_size=20),
        )
        def check(data: dict[str, Any], message: str | None) -> None:
            if message is not None:
                data["message"] = message
            data.setdefault("project", "web")
            reply = api.create(data)
            assert reply.status in (201, 400, 409), (data, reply.status, reply.data[:200])
            if reply.status == 201:
                item = reply.item
                assert api.get(f"/projects/acme/{item['project']}/user-feedback/{item['id']}/").item == item

        check()
        api.close()
