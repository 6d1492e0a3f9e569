"""SQL injection through every parameter and path: a 400 or the right (literal) answer, never a 500, tables intact."""

from __future__ import annotations

import urllib.parse

import pytest

from sentry_feedback.server import LocalReceiver

from .conftest import (
    ALL_TIME,
    INDEX,
    ORG,
    WEB,
    Api,
    Catalog,
    item_path,
)

INJECTIONS = [
    "' OR 1=1 --",
    "x'); DROP TABLE feedback; --",
    '" OR ""="',
    "1; DELETE FROM feedback",
    "') OR ('1'='1",
    "1 UNION SELECT * FROM attachments --",
    "production' --",
    "%",
    "_",
    "\\",
    "*",
    "\x00",
    "💥",
    "]",
    "' OR status IS NOT NULL OR '",
]
EVERYTHING = {"statsPeriod": ALL_TIME, "per_page": "100"}


def assert_intact(catalog: Catalog, capi: Api) -> None:
    assert len(catalog.server.store.list_feedback()) == len(catalog.rows)
    assert catalog.server.store.count_envelopes() == len(catalog.rows)
    reply = capi.browse(EVERYTHING)
    assert reply.hits == len(catalog.rows)
    assert sorted(reply.ids) == sorted(row.id for row in catalog.rows)


def quoted(text: str) -> str:
    """``text`` as a quoted query value (``"`` and ``\\`` escaped, ``*`` too: literal)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("*", "\\*") + '"'


@pytest.mark.parametrize("payload", INJECTIONS)
def test_through_the_filters(catalog: Catalog, capi: Api, payload: str) -> None:
    everything = capi.browse(EVERYTHING)
    # Values that are only compared: no match, or the literal match.
    assert capi.browse({**EVERYTHING, "environment": payload}).ids == []
    assert capi.browse({**EVERYTHING, "environment": ["production", payload]}).hits == 8
    assert capi.browse({**EVERYTHING, "queryReferrer": payload}).data == everything.data
    literal = [row for row in catalog.rows if payload.lower() in row.message.lower()]
    phrase = capi.browse({**EVERYTHING, "query": quoted(payload)})
    assert phrase.ids == catalog.order(literal, "-timestamp"), payload
    assert capi.browse({**EVERYTHING, "query": f"environment:{quoted(payload)}"}).ids == []
    assert capi.browse({**EVERYTHING, "query": f"release:{quoted(payload)}"}).ids == []
    assert capi.browse({**EVERYTHING, "query": f"tags[flavor]:{quoted(payload)}"}).ids == []
    assert capi.browse({**EVERYTHING, "query": f"!message:{quoted(payload)}"}).hits == len(catalog.rows) - (
        1 if payload == catalog.row(6).message else 0
    )
    # Values that must be one of a few: a 400.
    for name in ("project", "sort", "field", "statsPeriod", "per_page", "offset", "cursor"):
        assert capi.get(INDEX, {name: payload}).status == 400, name
    assert capi.get(INDEX, {"start": payload, "end": "2030-01-01T00:00:00Z"}).status == 400
    assert capi.get(INDEX, {"start": "2020-01-01T00:00:00Z", "end": payload}).status == 400
    # Raw in the query: a 400 (syntax) or an answer, never a 500.
    for query in (payload, f"message:{payload}", f"{payload}:x", f"tags[{payload}]:y", f"has:{payload}"):
        assert capi.get(INDEX, {**EVERYTHING, "query": query}).status in (200, 400), query
    assert_intact(catalog, capi)


@pytest.mark.parametrize(
    "query",
    [
        "tags[x' OR 1=1 --]:y",
        "tags[x]:\"' OR '1'='1\"",
        "x' OR 1=1 --:y",
        "message:*' OR '1'='1*",
        "id:[' OR 1=1 --, x]",
        "timestamp:>' OR 1=1 --",
        "count:>1 OR 1=1",
        "user.email:*%*",
        "has:x'--",
        "status:resolved' OR 'a'='a",
    ],
)
def test_through_query_syntax(catalog: Catalog, capi: Api, query: str) -> None:
    reply = capi.get(INDEX, {**EVERYTHING, "query": query})
    assert reply.status in (200, 400), reply.status
    if reply.status == 200:  # nothing in the catalog has these literal values
        assert reply.ids == [] or query == "user.email:*%*", (query, reply.ids)
    assert_intact(catalog, capi)


@pytest.mark.parametrize("payload", INJECTIONS)
def test_through_the_paths(catalog: Catalog, capi: Api, payload: str) -> None:
    part = urllib.parse.quote(payload, safe="")
    feedback_id = catalog.row(1).id
    for method, path in (
        ("GET", item_path(WEB.slug, part)),
        ("PATCH", item_path(WEB.slug, part)),
        ("DELETE", item_path(WEB.slug, part)),
        ("GET", item_path(WEB.slug, part) + "attachments/"),
        ("GET", item_path(WEB.slug, feedback_id) + f"attachments/{part}/"),
        ("GET", f"/projects/{ORG}/{WEB.slug}/events/{part}/"),
        ("GET", item_path(part, feedback_id)),
        ("DELETE", item_path(part, feedback_id)),
        ("GET", f"/organizations/{part}/user-feedback/"),
    ):
        body = b'{"data": {"status": "resolved"}}' if method == "PATCH" else None
        assert capi.request(method, path, body=body).status == 404, (method, path)
    assert_intact(catalog, capi)
    assert {f.status for f in catalog.server.store.list_feedback()} == {"unresolved", "resolved"}
    assert catalog.server.store.get_feedback(catalog.row(17).id).status == "resolved"  # type: ignore[union-attr]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_through_a_created_feedback_stored_verbatim(server: LocalReceiver, api: Api, payload: str) -> None:
    """Hostile text in every field of a create body is stored and found as the literal text it is."""
    text = f"{payload} end"
    reply = api.create(
        {
            "project": "web",
            "message": text,
            "environment": text,
            "release": text,
            "contact_email": text,
            "tags": {text: text, "plain": text},
            "user": {"email": text, "username": text},
        }
    )
    assert reply.status == 201, reply.data
    item = reply.item
    assert (item["message"], item["environment"], item["release"], item["contact_email"]) == (text,) * 4
    assert item["tags"] == {text: text, "plain": text}
    feedback_id = item["id"]
    assert api.browse({"environment": text}).ids == [feedback_id]
    assert api.browse({"query": f"message:{quoted(text)}"}).ids == [feedback_id]
    if "\x00" not in payload:  # SQLite's JSON functions end a text at \u0000: tags and user fields only
        assert api.browse({"query": f"plain:{quoted(text)}"}).ids == [feedback_id]
        assert api.browse({"query": f"user.email:{quoted(text)} release:{quoted(text)}"}).ids == [feedback_id]
    assert api.browse({"query": f"release:{quoted(text)}"}).ids == [feedback_id]
    assert api.browse({"query": quoted(text)}).ids == [feedback_id]
    assert len(server.store.list_feedback()) == 1
