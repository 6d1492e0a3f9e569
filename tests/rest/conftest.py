"""Fixtures and helpers of the REST API tests: a feedback server with two projects, raw HTTP, seed data.

Everything goes over real HTTP to 127.0.0.1 with urllib3; nothing is mocked. Feedback that is
only data for a test (not the point of it) is stored with ``server.store.store_envelope``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hypothesis import HealthCheck, settings

from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.server import ApiToken, LocalReceiver, Project, ServerConfig

HERE = Path(__file__).parent
#: The seed's "Browse User Feedback" response and "Create User Feedback" request, as the seed gives them.
SEED_BROWSE_RESPONSE: dict[str, Any] = json.loads((HERE / "seed_browse_response.json").read_text("utf-8"))
SEED_ITEM: dict[str, Any] = SEED_BROWSE_RESPONSE["data"][0]
SEED_CREATE_BYTES = (HERE / "seed_create_request.json").read_bytes()
SEED_CREATE_BODY: dict[str, Any] = json.loads(SEED_CREATE_BYTES)
SEED_PATCH_BODY: dict[str, Any] = {"data": {"status": "resolved"}}

#: The seed's attribute table: column -> type.
SEED_ATTRIBUTES: dict[str, str] = {
    "browser": "object",
    "browser.name": "optional[string]",
    "browser.version": "optional[string]",
    "contact_email": "string",
    "device": "object",
    "device.brand": "optional[string]",
    "device.family": "optional[string]",
    "device.model": "optional[string]",
    "device.name": "optional[string]",
    "dist": "string",
    "environment": "string",
    "error_ids": "array[string]",
    "id": "string",
    "locale": "object",
    "locale.lang": "string",
    "locale.timezone": "string",
    "message": "string",
    "os": "object",
    "os.name": "optional[string]",
    "os.version": "optional[string]",
    "platform": "string",
    "release": "string",
    "replay_id": "optional[string]",
    "request": "string",
    "sdk": "object",
    "status": "string",
    "tags": "object",
    "timestamp": "string",
    "trace_ids": "array[string]",
    "url": "string",
    "user": "object",
    "user.display_name": "optional[string]",
    "user.email": "optional[string]",
    "user.id": "optional[string]",
    "user.ip": "optional[string]",
    "user.username": "optional[string]",
}
#: Attributes every feedback has a value for (the others are null when the feedback has none, per the contract).
REQUIRED = frozenset({"id", "message", "status", "timestamp"})
#: Our server's extensions of the item (see the contract).
EXTENSIONS = ("project", "project_id", "name", "attachment_count")
HEX32 = re.compile(r"[0-9a-f]{32}")

ORG = "acme"
WEB = Project("web", "2", "webpublickey")
MOBILE = Project("mobile", "7", "mobilepublickey")
TOKEN = "rest-tests-write-token-0123456789"
READ_TOKEN = "rest-tests-read-token-0123456789"
CONFIG = ServerConfig(ORG, (WEB, MOBILE), (ApiToken(TOKEN), ApiToken(READ_TOKEN, frozenset({"read"}))))
INDEX = f"/organizations/{ORG}/user-feedback/"
#: A statsPeriod that reaches back to before 1970: every feedback.
ALL_TIME = "9999999999w"

#: Hypothesis: the same examples on every run, no example database, no per-example deadline.
HYPOTHESIS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Params = Mapping[str, Any] | Sequence[tuple[str, str]]
_LINK = re.compile(r'<([^>]*)>; rel="(previous|next)"; results="(true|false)"; cursor="([^"]*)"')


@dataclass(frozen=True)
class Link:
    """One entry of a ``Link`` header."""

    url: str
    results: bool
    cursor: str


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers and the whole body."""

    status: int
    headers: urllib3.HTTPHeaderDict
    data: bytes

    def json(self) -> Any:
        assert self.headers.get("Content-Type", "").startswith("application/json"), self.headers
        return json.loads(self.data)

    @property
    def detail(self) -> str:
        """The ``detail`` of a JSON error answer (asserted to be a non-empty string)."""
        body = self.json()
        assert isinstance(body, dict), body
        detail = body.get("detail")
        assert isinstance(detail, str) and detail, body
        return detail

    @property
    def items(self) -> list[dict[str, Any]]:
        """The ``data`` list of a browse answer."""
        assert self.status == 200, (self.status, self.data[:500])
        data = self.json()["data"]
        assert isinstance(data, list)
        return data

    @property
    def item(self) -> dict[str, Any]:
        """The ``data`` object of an item answer."""
        data = self.json()["data"]
        assert isinstance(data, dict)
        return data

    @property
    def ids(self) -> list[str]:
        return [item["id"] for item in self.items]

    @property
    def hits(self) -> int:
        return int(self.headers["X-Hits"])

    @property
    def links(self) -> dict[str, Link]:
        """``previous`` and ``next`` of the ``Link`` header (both must be there, and nothing else)."""
        header = self.headers["Link"]
        found = {rel: Link(url, results == "true", cursor) for url, rel, results, cursor in _LINK.findall(header)}
        assert set(found) == {"previous", "next"}, header
        assert _LINK.sub("", header).replace(",", "").strip() == "", header
        for link in found.values():  # the URL carries the cursor the header names
            assert urllib.parse.parse_qs(urllib.parse.urlsplit(link.url).query)["cursor"] == [link.cursor]
        return found


class Api:
    """Raw HTTP requests to a server's REST API, with a Bearer token."""

    def __init__(self, server: LocalReceiver, token: str | None = TOKEN) -> None:
        self.server = server
        self.token = token
        self.pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=20))

    def url(self, path: str, params: Params | None = None) -> str:
        url = path if path.startswith("http") else self.server.api_url + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        return url

    def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        *,
        body: bytes | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        response = self.pool.request(
            method, self.url(path, params), body=body, headers=sent, redirect=False, preload_content=True
        )
        reply = Reply(response.status, response.headers, response.data)
        if reply.status >= 400 and method != "HEAD":  # every error of the API is JSON with a detail
            assert reply.detail
        assert reply.status != 500, reply.data
        return reply

    def get(self, path: str, params: Params | None = None, **kwargs: Any) -> Reply:
        return self.request("GET", path, params, **kwargs)

    def browse(self, params: Params | None = None) -> Reply:
        """``GET`` the index; asserts 200."""
        reply = self.get(INDEX, params)
        assert reply.status == 200, (reply.status, reply.data[:500])
        return reply

    def create(self, data: Mapping[str, Any], params: Params | None = None) -> Reply:
        return self.request("POST", INDEX, params, json_body={"data": dict(data)})

    def patch(self, project: str, feedback_id: str, status: Any) -> Reply:
        return self.request("PATCH", item_path(project, feedback_id), json_body={"data": {"status": status}})

    def delete(self, project: str, feedback_id: str) -> Reply:
        return self.request("DELETE", item_path(project, feedback_id))

    def close(self) -> None:
        self.pool.clear()


def item_path(project: str, feedback_id: str) -> str:
    return f"/projects/{ORG}/{project}/user-feedback/{feedback_id}/"


def assert_bad_request(reply: Reply, *fragments: str) -> str:
    """A 400 whose JSON ``detail`` holds every fragment; returns the detail."""
    assert reply.status == 400, (reply.status, reply.data[:300])
    detail = reply.detail
    for fragment in fragments:
        assert fragment in detail, (fragment, detail)
    return detail


# -- the items' shape ----------------------------------------------------------------------------


def _lookup(item: Mapping[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        assert isinstance(value, dict) and part in value, (path, item)
        value = value[part]
    return value


def assert_seed_item(item: Mapping[str, Any]) -> None:
    """Every attribute of the seed's table is there with the seed's type (absent values null, per the contract)."""
    objects = {path for path, kind in SEED_ATTRIBUTES.items() if kind == "object"}
    for path, kind in SEED_ATTRIBUTES.items():
        value = _lookup(item, path)
        if path == "request":  # "string" in the seed's table, but the create body's request is an object
            assert value is None or isinstance(value, dict), (path, value)
        elif path == "tags":
            assert isinstance(value, dict), value
            for key, tag in value.items():
                assert isinstance(key, str)
                assert isinstance(tag, str) or (isinstance(tag, list) and all(isinstance(t, str) for t in tag)), tag
        elif kind == "object":
            assert isinstance(value, dict), (path, value)
            sub_keys = {p.split(".", 1)[1] for p in SEED_ATTRIBUTES if p.startswith(path + ".")}
            if sub_keys:  # exactly the seed's sub-attributes
                assert set(value) == sub_keys, (path, value)
            else:  # sdk: the seed's example has name and version
                assert set(value) == {"name", "version"}, (path, value)
                assert all(v is None or isinstance(v, str) for v in value.values()), value
        elif kind == "array[string]":
            assert isinstance(value, list) and all(isinstance(v, str) for v in value), (path, value)
        elif path in REQUIRED:
            assert isinstance(value, str) and value, (path, value)
        else:
            assert value is None or isinstance(value, str), (path, value)
    top_level = {path for path in SEED_ATTRIBUTES if "." not in path}
    assert set(item) == top_level | set(EXTENSIONS), sorted(set(item) ^ (top_level | set(EXTENSIONS)))
    assert objects <= top_level
    assert HEX32.fullmatch(item["id"]), item["id"]
    assert item["status"] in ("resolved", "unresolved")
    assert item["timestamp"].endswith("Z"), item["timestamp"]
    assert parse_iso(item["timestamp"]).tzinfo is not None
    assert isinstance(item["project"], str) and isinstance(item["project_id"], str) and item["project_id"].isdigit()
    assert item["name"] is None or isinstance(item["name"], str)
    assert isinstance(item["attachment_count"], int) and item["attachment_count"] >= 0


def parse_iso(text: str) -> datetime:
    """An ISO 8601 datetime; naive means UTC (as in the seed's examples)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# -- feedback as data ----------------------------------------------------------------------------


def feedback_event(
    message: str,
    *,
    timestamp: float | str,
    feedback: Mapping[str, Any] | None = None,
    contexts: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A feedback event as an SDK sends it (``contexts.feedback`` holds the message)."""
    return {
        "type": "feedback",
        "timestamp": timestamp,
        "platform": "javascript",
        "level": "info",
        "contexts": {"feedback": {"message": message, **(feedback or {})}, **(contexts or {})},
        **fields,
    }


def store_feedback(server: LocalReceiver, project: Project, event_id: str, event: dict[str, Any]) -> None:
    """Store a feedback directly (as the ingest endpoint would), for tests where HTTP is not the point."""
    envelope = Envelope({"event_id": event_id}, [EnvelopeItem.from_json("feedback", event)])
    server.store.store_envelope(project.id, envelope, 1)


def store_raw(
    server: LocalReceiver, project: Project, header: Mapping[str, Any], items: Sequence[tuple[Mapping[str, Any], bytes]]
) -> None:
    """Store a hand-built envelope directly (events, attachments, ...)."""
    body = envelope_bytes(header, items)
    server.store.store_envelope(project.id, Envelope.parse(body), len(body))


def envelope_bytes(header: Mapping[str, Any], items: Sequence[tuple[Mapping[str, Any], bytes]]) -> bytes:
    """An envelope built by hand (not by the SDK): header line, then each item's header and payload."""
    lines = [json.dumps(header).encode()]
    for item_header, payload in items:
        lines += [json.dumps({**item_header, "length": len(payload)}).encode(), payload]
    return b"\n".join(lines) + b"\n"


def post_envelope(server: LocalReceiver, body: bytes, project: Project = WEB) -> urllib3.BaseHTTPResponse:
    """POST an envelope to the ingest endpoint with DSN auth."""
    return urllib3.request(
        "POST",
        f"{server.url}/api/{project.id}/envelope/",
        body=body,
        headers={
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={project.public_key}, sentry_client=tests/1.0",
            "Content-Type": "application/x-sentry-envelope",
        },
        retries=False,
    )


def event_id(number: int) -> str:
    """A feedback id made from a number (32 hex digits)."""
    return f"{number:032x}"


def now() -> float:
    return time.time()


# -- fixtures ------------------------------------------------------------------------------------


_stopping: list[threading.Thread] = []


def stop_later(local: LocalReceiver) -> None:
    """Stop a server on a thread of its own: stopping waits for the serving loop's next poll, a test need not."""
    thread = threading.Thread(target=local.stop, name=f"stop {local!r}")
    thread.start()
    _stopping.append(thread)


@pytest.fixture(scope="session", autouse=True)
def _servers_are_stopped() -> Iterator[None]:
    yield
    for thread in _stopping:
        thread.join(timeout=30)
        assert not thread.is_alive(), thread.name


@pytest.fixture
def server() -> Iterator[LocalReceiver]:
    """A feedback server: organization ``acme``, projects ``web`` (2) and ``mobile`` (7), a write and a read token."""
    local = LocalReceiver(config=CONFIG).start()
    yield local
    stop_later(local)


@pytest.fixture
def api(server: LocalReceiver) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


# -- a catalog of feedback for the browse tests ----------------------------------------------------

HOUR, DAY = 3600, 86400
ERROR_1 = "4f0e18332d11431c9b97d924edecb76e"
ERROR_2 = "5a1e18332d11431c9b97d924edecb76e"
TRACE = "fbb42a39a61e4aa6969b4fecbfbbc114"
REPLAY = "ec3b4dc8b79f417596f7a1aa4fcca5d2"


@dataclass(frozen=True)
class Row:
    """One feedback of the catalog: ``age`` seconds before the catalog's ``now``."""

    number: int
    message: str
    project: Project
    age: int
    environment: str | None = None
    fields: Mapping[str, Any] | None = None
    feedback: Mapping[str, Any] | None = None
    contexts: Mapping[str, Any] | None = None
    status: str = "unresolved"

    @property
    def id(self) -> str:
        return event_id(self.number)


ROWS: tuple[Row, ...] = (
    Row(
        1,
        "Love the new dashboard",
        WEB,
        30,
        "production",
        {
            "release": "app@1.0",
            "dist": "1",
            "tags": {"flavor": "vanilla", "count": "3"},
            "user": {"id": "42", "email": "ann@example.com", "ip_address": "10.0.0.1", "username": "ann"},
            "sdk": {"name": "sentry.javascript.react", "version": "7.0.0"},
        },
        {
            "contact_email": "ann@example.com",
            "name": "Ann",
            "associated_event_id": ERROR_1,
            "url": "https://shop.example.com/cart",
            "replay_id": REPLAY,
        },
        {
            "browser": {"name": "Chrome", "version": "120.0"},
            "os": {"name": "Windows", "version": "11"},
            "trace": {"trace_id": TRACE, "span_id": "a1b2c3d4e5f60718"},
            "culture": {"locale": "en-US", "timezone": "Europe/Paris"},
        },
    ),
    Row(
        2,
        "Checkout is BROKEN",
        MOBILE,
        10 * 60,
        "staging",
        {"tags": {"flavor": "choc_chip", "count": "12", "page": "checkout"}, "user": {"email": "bob@example.com"}},
        {"contact_email": "bob@example.com", "url": "https://shop.example.com/checkout"},
        {"browser": {"name": "Firefox", "version": "125.0"}},
    ),
    Row(3, "100% useless", WEB, HOUR, "production", {"level": "warning", "tags": {"flavor": "50%off"}}),
    Row(
        4,
        "price_is wrong",
        MOBILE,
        3 * HOUR,
        "production",
        {"tags": {"count": "150", "region": "eu_west"}},
        contexts={"device": {"brand": "Apple", "family": "iPhone", "model": "11", "name": "iPhone 11"}},
    ),
    Row(5, "back\\slash in path", WEB, 26 * HOUR, "production"),
    Row(6, "x' OR 1=1 --", WEB, 3 * DAY, "production"),
    Row(7, "Dark mode please", MOBILE, 6 * DAY, None, {"user": {"ip_address": "{{auto}}"}}),
    Row(8, "Crash on iPhone", WEB, 8 * DAY, "production", feedback={"associated_event_id": ERROR_2}),
    Row(9, "Café résumé", WEB, 15 * DAY, "production", {"tags": [["it", "me"], ["it", "you're"]]}),
    Row(10, "Payments failing again", MOBILE, 400 * DAY, "staging"),
    # Ties: equal timestamps, in both projects.
    Row(11, "tie one", WEB, 5000, "dev"),
    Row(12, "tie two", MOBILE, 5000, "dev"),
    Row(13, "tie three", WEB, 5000, "dev"),
    Row(14, "tie four", MOBILE, 2 * DAY, "dev"),
    Row(15, "tie five", WEB, 2 * DAY, "dev"),
    Row(16, "tie six", WEB, 2 * DAY, "dev"),
    Row(17, "Resolved already", WEB, 2 * HOUR, "production", status="resolved"),
)
#: The order the catalog is stored in (so that arrival order is neither id nor time order).
ARRIVAL = (13, 2, 16, 7, 11, 1, 9, 14, 4, 17, 6, 12, 10, 3, 15, 8, 5)


@dataclass
class Catalog:
    """A server holding :data:`ROWS` (timestamps relative to ``now``, a whole second)."""

    server: LocalReceiver
    now: int
    rows: tuple[Row, ...]
    arrival: dict[str, int]  # feedback id -> the store's row id (its place in arrival order)

    def timestamp(self, row: Row) -> int:
        return self.now - row.age

    def row(self, number: int) -> Row:
        return next(row for row in self.rows if row.number == number)

    def order(self, rows: Sequence[Row], sort: str) -> list[str]:
        """The ids of ``rows`` in the order ``sort``: ties broken by arrival (reversed for ``timestamp``)."""

        def key(row: Row) -> tuple[int, ...]:
            ts, arrived, project = self.timestamp(row), self.arrival[row.id], int(row.project.id)
            return {
                "-timestamp": (-ts, arrived),
                "timestamp": (ts, -arrived),
                "projectId": (project, -ts, arrived),
                "-projectId": (-project, -ts, arrived),
            }[sort]

        return [row.id for row in sorted(rows, key=key)]

    def within(self, seconds: int) -> list[Row]:
        return [row for row in self.rows if row.age < seconds]


def build_catalog(server: LocalReceiver) -> Catalog:
    moment = int(time.time())
    for number in ARRIVAL:
        row = next(row for row in ROWS if row.number == number)
        fields = dict(row.fields or {})
        if row.environment is not None:
            fields["environment"] = row.environment
        event = feedback_event(
            row.message, timestamp=moment - row.age, feedback=row.feedback, contexts=row.contexts, **fields
        )
        store_feedback(server, row.project, row.id, event)
        if row.status != "unresolved":
            assert server.store.set_feedback_status(row.id, row.status)
    arrival = {row.id: stored.id for row in ROWS if (stored := server.store.get_feedback(row.id)) is not None}
    assert len(arrival) == len(ROWS)
    return Catalog(server, moment, ROWS, arrival)


@pytest.fixture(scope="module")
def catalog() -> Iterator[Catalog]:
    """A server with the catalog, shared by a module's tests (which must not change it)."""
    with LocalReceiver(config=CONFIG) as local:
        yield build_catalog(local)


@pytest.fixture
def capi(catalog: Catalog) -> Iterator[Api]:
    client = Api(catalog.server)
    yield client
    client.close()
