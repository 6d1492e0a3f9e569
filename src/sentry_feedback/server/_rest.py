"""The User Feedback REST API of seed 003 under ``/api/0/``, with Sentry's conventions.

Routes (a trailing slash is optional):

- ``GET``/``POST /api/0/organizations/<org>/user-feedback/``: browse (filters, sort, paging,
  ``Link`` and ``X-Hits``) and create;
- ``GET``/``PATCH``/``DELETE /api/0/projects/<org>/<project>/user-feedback/<id>/``;
- ``GET .../user-feedback/<id>/attachments/`` and ``.../attachments/<attachment_id>/``;
- ``GET /api/0/projects/<org>/<project>/events/<event_id>/``: a stored event (the error a
  feedback names in ``error_ids``);
- ``GET /api/0/organizations/<org>/eventids/<event_id>/``: which project holds an event;
- ``GET /api/0/organizations/<org>/traces/<trace_id>/`` and ``.../user-feedback/<id>/trace/``: the
  transactions and spans stored for a trace (see ``_trace``);
- ``GET /api/0/organizations/``, ``.../organizations/<org>/projects/``, ``.../environments/`` and
  ``/api/0/projects/<org>/<project>/keys/`` (the DSN), for the inbox.

Every answer is JSON (but downloads); errors are ``{"detail": "..."}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._envelope import Envelope, EnvelopeItem
from .._feedback import normalize_event_id
from ..exceptions import InvalidFeedbackError
from ._app import Arrival
from ._auth import authenticate
from ._config import Project
from ._http import Answer, Reject
from ._items import event_from_create_body, feedback_item
from ._listing import cursor_for, link_header, parse_listing
from ._records import StoredAttachment, StoredEvent, StoredFeedback
from ._rows import valid_trace_id
from ._trace import feedback_trace_json, trace_json

if TYPE_CHECKING:
    from ._app import FeedbackApp, Request

__all__ = ["handle"]

#: ``X-Hits`` counts at most this many matches, as Sentry's API does (``X-Max-Hits`` says so): the
#: cost of a listing stays bounded however much feedback matches.
MAX_HITS = 1000
#: The largest JSON body the API reads (a create body is a few KiB).
MAX_JSON_BODY = 1024 * 1024
_SEGMENT = r"([^/]{1,200})"
_ROUTES: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(rf"/api/0/organizations/{_SEGMENT}/user-feedback/?"), "index", ("GET", "HEAD", "POST")),
    (
        re.compile(rf"/api/0/projects/{_SEGMENT}/{_SEGMENT}/user-feedback/{_SEGMENT}/?"),
        "item",
        ("GET", "HEAD", "PATCH", "DELETE"),
    ),
    (
        re.compile(rf"/api/0/projects/{_SEGMENT}/{_SEGMENT}/user-feedback/{_SEGMENT}/attachments/?"),
        "attachments",
        ("GET", "HEAD"),
    ),
    (
        re.compile(rf"/api/0/projects/{_SEGMENT}/{_SEGMENT}/user-feedback/{_SEGMENT}/attachments/{_SEGMENT}/?"),
        "download",
        ("GET", "HEAD"),
    ),
    (
        re.compile(rf"/api/0/projects/{_SEGMENT}/{_SEGMENT}/user-feedback/{_SEGMENT}/trace/?"),
        "feedback_trace",
        ("GET", "HEAD"),
    ),
    (re.compile(rf"/api/0/projects/{_SEGMENT}/{_SEGMENT}/events/{_SEGMENT}/?"), "event", ("GET", "HEAD")),
    (re.compile(rf"/api/0/organizations/{_SEGMENT}/traces/{_SEGMENT}/?"), "trace", ("GET", "HEAD")),
    (re.compile(rf"/api/0/organizations/{_SEGMENT}/eventids/{_SEGMENT}/?"), "eventids", ("GET", "HEAD")),
    (re.compile(rf"/api/0/organizations/{_SEGMENT}/projects/?"), "projects", ("GET", "HEAD")),
    (re.compile(rf"/api/0/organizations/{_SEGMENT}/environments/?"), "environments", ("GET", "HEAD")),
    (re.compile(rf"/api/0/projects/{_SEGMENT}/{_SEGMENT}/keys/?"), "keys", ("GET", "HEAD")),
]
_ORGANIZATIONS = re.compile(r"/api/0/organizations/?")
_STATUSES = ("resolved", "unresolved")
#: Attachment types served ``inline`` (shown by the inbox); anything else is a download.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}")
_NOT_FOUND = "The requested resource does not exist"


def handle(app: FeedbackApp, request: Request) -> Answer:
    """Route a ``/api/0/`` request; every failure is an :class:`Answer` with a ``detail``."""
    if _ORGANIZATIONS.fullmatch(request.path):
        authenticate(app.config, request.headers, request.method, origin=request.base_url)
        request.body()
        if request.method not in ("GET", "HEAD"):
            return Answer.error(405, f'Method "{request.method}" not allowed.', {"Allow": "GET, HEAD"})
        org = app.config.org
        return Answer.json(200, [{"id": "1", "slug": org, "name": org}], {"Cache-Control": "no-store"})
    for pattern, name, methods in _ROUTES:
        match = pattern.fullmatch(request.path)
        if match is None:
            continue
        authenticate(app.config, request.headers, request.method, origin=request.base_url)
        if request.method not in methods:
            request.body()
            return Answer.error(405, f'Method "{request.method}" not allowed.', {"Allow": ", ".join(methods)})
        org = match.group(1)
        if org != app.config.org:
            return Answer.error(404, _NOT_FOUND)
        handler: Callable[..., Answer] = _HANDLERS[name]
        answer = handler(app, request, *match.groups()[1:])
        return Answer(answer.status, answer.body, {"Cache-Control": "no-store", **answer.headers})
    request.body()
    return Answer.error(404, f"no such endpoint: {request.method} {request.path}")


# -- the collection ------------------------------------------------------------------


def _index(app: FeedbackApp, request: Request) -> Answer:
    if request.method == "POST":
        return _create(app, request)
    request.body()
    query = request.query()
    listing = parse_listing(query, app.config, now=app.now())
    page = app.store.page(
        where=listing.where,
        params=listing.params,
        projects=listing.projects,
        environments=listing.environments,
        start=listing.start,
        end=listing.end,
        sort=listing.sort,
        limit=listing.per_page,
        offset=listing.offset,
        after=listing.after,
        before=listing.before,
        max_total=MAX_HITS,
    )
    items = _items(app, page.items)
    if listing.fields is not None:
        items = [{name: item[name] for name in listing.fields} for item in items]
    sort_key = app.store.sort_key
    previous = None
    if page.has_previous:  # past the last item there is no item to start from: the offset before
        first = page.items[0] if page.items else None
        back = f"0:{max(0, min(listing.offset, page.total) - listing.per_page)}:1"
        previous = cursor_for(sort_key(first, listing.sort), previous=True) if first else back
    next_ = cursor_for(sort_key(page.items[-1], listing.sort), previous=False) if page.has_next and page.items else None
    link = link_header(
        request.base_url,
        request.path,
        query,
        previous=previous,
        next=next_,
        offset=listing.offset,
        per_page=listing.per_page,
    )
    headers = {"Link": link, "X-Hits": str(page.total), "X-Max-Hits": str(MAX_HITS)}
    return Answer.json(200, {"data": items}, headers)


def _create(app: FeedbackApp, request: Request) -> Answer:
    body = _json_body(request)
    data = body.get("data") if isinstance(body, dict) and isinstance(body.get("data"), dict) else body
    project = _create_project(app, request, data)
    result = event_from_create_body(body, now=app.now())
    if result.errors:
        problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in sorted(result.errors.items()))
        return Answer.json(400, {"detail": f"Invalid feedback: {problems}", "errors": result.errors})
    event = result.event
    event_id = event["event_id"]
    if app.store.get_feedback(event_id) is not None:
        return Answer.error(409, f"A feedback with id {event_id} exists already.")
    envelope = Envelope({"event_id": event_id}, [EnvelopeItem.from_json("feedback", event)])
    try:
        app.store.store_envelope(project.id, envelope, len(request.body()))
    except UnicodeEncodeError as exc:
        return Answer.error(400, f"Invalid text in the feedback: {exc.reason}")
    stored = app.store.get_feedback(event_id)
    if stored is None:  # deleted at once by another client
        return Answer.error(409, f"The feedback {event_id} was removed while being created.")
    message = event["contexts"]["feedback"]["message"]
    app.arrived([Arrival(app.now(), project.slug, "feedback", event_id, message)])
    return Answer.json(201, {"data": _items(app, [stored])[0]})


def _create_project(app: FeedbackApp, request: Request, data: Any) -> Project:
    """The project a created feedback goes to: ``data.project``, ``?project=``, or the only one."""
    named = data.get("project") if isinstance(data, dict) else None
    if named is None:
        values = request.query().get("project")
        named = values[0] if values else None
    if named is None:
        if len(app.config.projects) == 1:
            return app.config.projects[0]
        raise Reject(Answer.error(400, "Give the project (data.project or ?project=): this server has several."))
    project = app.config.project(str(named)) if isinstance(named, (str, int)) and not isinstance(named, bool) else None
    if project is None:
        raise Reject(Answer.error(400, f"Unknown project {str(named)[:60]!r}"))
    return project


# -- one feedback --------------------------------------------------------------------


def _item(app: FeedbackApp, request: Request, project_slug: str, feedback_id: str) -> Answer:
    project = _project(app, project_slug)
    stored = _feedback(app, project, feedback_id)
    if request.method == "DELETE":
        request.body()
        if not app.store.delete_feedback(stored.event_id):
            return Answer.error(404, _NOT_FOUND)
        return Answer(204)
    if request.method == "PATCH":
        status = _patch_status(_json_body(request))
        if not app.store.set_feedback_status(stored.event_id, status):
            return Answer.error(404, _NOT_FOUND)
        # The item as this request left it (a competing PATCH may already have changed it again).
        return Answer.json(202, {"data": _items(app, [dataclasses.replace(stored, status=status)])[0]})
    request.body()
    return Answer.json(200, {"data": _items(app, [stored])[0]})


def _patch_status(body: Any) -> str:
    data = body.get("data") if isinstance(body, dict) and "data" in body else body
    if not isinstance(data, dict):
        raise Reject(Answer.error(400, 'The body must be {"data": {"status": "resolved"}}.'))
    others = sorted(set(data) - {"status"})
    if others:
        raise Reject(Answer.error(400, f"Only status can be changed, not {', '.join(map(str, others))[:200]}."))
    status = data.get("status")
    if status not in _STATUSES:
        shown = json.dumps(status)[:60]
        raise Reject(Answer.error(400, f"Invalid status {shown}: use resolved or unresolved."))
    return str(status)


def _attachments(app: FeedbackApp, request: Request, project_slug: str, feedback_id: str) -> Answer:
    request.body()
    stored = _feedback(app, _project(app, project_slug), feedback_id)
    return Answer.json(200, {"data": [_attachment_json(a) for a in app.store.list_attachments(stored.event_id)]})


def _download(app: FeedbackApp, request: Request, project_slug: str, feedback_id: str, attachment_id: str) -> Answer:
    request.body()
    stored = _feedback(app, _project(app, project_slug), feedback_id)
    attachment = (
        app.store.get_attachment(int(attachment_id)) if attachment_id.isdigit() and len(attachment_id) < 19 else None
    )
    if attachment is None or attachment.event_id != stored.event_id:
        return Answer.error(404, _NOT_FOUND)
    content_type = attachment.content_type if _MIME.fullmatch(attachment.content_type) else "application/octet-stream"
    disposition = content_disposition(attachment.filename)
    if content_type.lower() in INLINE_TYPES:  # an image the inbox shows; never SVG (it can hold scripts)
        disposition = "inline" + disposition[len("attachment") :]
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return Answer(200, attachment.data, headers)


def content_disposition(filename: str) -> str:
    """``attachment`` with a plain-ASCII ``filename`` and the exact name in ``filename*`` (RFC 6266)."""
    safe = "".join("_" if ord(c) < 0x20 or ord(c) == 0x7F or c in "/\\" else c for c in filename)[:1000]
    if safe.strip(". ") == "":  # "", ".", "..": not a file name
        safe = "attachment"
    plain = "".join(c if 0x20 <= ord(c) < 0x7F and c != '"' else "_" for c in safe[:200])
    exact = urllib.parse.quote(safe, safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}"


def _event(app: FeedbackApp, request: Request, project_slug: str, event_id: str) -> Answer:
    request.body()
    project = _project(app, project_slug)
    key = _id(event_id)
    stored = app.store.get_event(key) if key else None
    if stored is None or stored.project_id != project.id:
        return Answer.error(404, _NOT_FOUND)
    return Answer.json(200, event_json(stored))


def _event_ids(app: FeedbackApp, request: Request, event_id: str) -> Answer:
    """Sentry's event-id lookup: which project holds the event (a feedback or an error) with this id."""
    request.body()
    key = _id(event_id)
    stored_event = app.store.get_event(key) if key else None
    feedback = app.store.get_feedback(key) if key and stored_event is None else None
    if stored_event is not None:
        project_id, event = stored_event.project_id, event_json(stored_event)
    elif feedback is not None:
        project_id, event = feedback.project_id, {"id": key, "eventID": key, "type": "feedback"}
    else:
        return Answer.error(404, _NOT_FOUND)
    found = {
        "organizationSlug": app.config.org,
        "projectSlug": app.project_slug(project_id),
        "groupId": None,
        "eventId": key,
        "event": event,
    }
    return Answer.json(200, found)


def _trace(app: FeedbackApp, request: Request, trace_id: str) -> Answer:
    """The transactions and spans stored for a trace (of any project): 200 with none when there are none."""
    request.body()
    key = valid_trace_id(trace_id)
    if key is None:
        return Answer.error(404, _NOT_FOUND)
    return Answer.json(200, trace_json(app, key))


def _feedback_trace(app: FeedbackApp, request: Request, project_slug: str, feedback_id: str) -> Answer:
    """The trace of a feedback: its transactions and spans, with the feedback's span and time."""
    request.body()
    stored = _feedback(app, _project(app, project_slug), feedback_id)
    return Answer.json(200, feedback_trace_json(app, stored))


def _projects(app: FeedbackApp, request: Request) -> Answer:
    request.body()
    return Answer.json(200, [{"id": p.id, "slug": p.slug, "name": p.slug} for p in app.config.projects])


def _environments(app: FeedbackApp, request: Request) -> Answer:
    request.body()
    names = app.store.environments()
    return Answer.json(200, [{"id": str(index), "name": name} for index, name in enumerate(names, 1)])


def _keys(app: FeedbackApp, request: Request, project_slug: str) -> Answer:
    """The project's DSN key, with the DSN an SDK should use to reach this server as the client did."""
    request.body()
    project = _project(app, project_slug)
    scheme, _, host = request.base_url.partition("://")
    dsn = f"{scheme}://{project.public_key}@{host}/{project.id}"
    key = {
        "id": project.public_key,
        "name": "Default",
        "public": project.public_key,
        "isActive": True,
        "projectId": int(project.id),
        "dsn": {"public": dsn},
    }
    return Answer.json(200, [key])


_HANDLERS: dict[str, Callable[..., Answer]] = {
    "projects": _projects,
    "environments": _environments,
    "keys": _keys,
    "eventids": _event_ids,
    "index": _index,
    "item": _item,
    "attachments": _attachments,
    "download": _download,
    "event": _event,
    "trace": _trace,
    "feedback_trace": _feedback_trace,
}


# -- shared --------------------------------------------------------------------------


def _items(app: FeedbackApp, stored: list[StoredFeedback]) -> list[dict[str, Any]]:
    """The seed's items for ``stored``, with our extensions (project, project_id, name, attachment_count)."""
    counts = app.store.attachment_counts([feedback.event_id for feedback in stored])
    items = []
    for feedback in stored:
        item = feedback_item(feedback)
        item["project"] = app.project_slug(feedback.project_id)
        item["project_id"] = feedback.project_id
        item["name"] = feedback.name
        item["attachment_count"] = counts.get(feedback.event_id, 0)
        items.append(item)
    return items


def _project(app: FeedbackApp, slug_or_id: str) -> Project:
    project = app.config.project(slug_or_id)
    if project is None:
        raise Reject(Answer.error(404, _NOT_FOUND))
    return project


def _feedback(app: FeedbackApp, project: Project, feedback_id: str) -> StoredFeedback:
    key = _id(feedback_id)
    stored = app.store.get_feedback(key) if key else None
    if stored is None or stored.project_id != project.id:
        raise Reject(Answer.error(404, _NOT_FOUND))
    return stored


def _id(text: str) -> str | None:
    try:
        return normalize_event_id(text, "id")
    except InvalidFeedbackError:
        return None


def _json_body(request: Request) -> Any:
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_JSON_BODY:
        raise Reject(Answer.error(413, f"The body is larger than {MAX_JSON_BODY} bytes."), close=True)
    body = request.body()
    if len(body) > MAX_JSON_BODY:
        raise Reject(Answer.error(413, f"The body is larger than {MAX_JSON_BODY} bytes."))
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Reject(Answer.error(400, "The body is not UTF-8.")) from None
    except RecursionError:
        raise Reject(Answer.error(400, "The body is nested too deeply.")) from None
    except ValueError as exc:
        raise Reject(Answer.error(400, f"The body is not JSON: {exc}")) from None


def _attachment_json(attachment: StoredAttachment) -> dict[str, Any]:
    return {
        "id": str(attachment.id),
        "name": attachment.filename,
        "mimetype": attachment.content_type,
        "size": attachment.size,
        "sha1": hashlib.sha1(attachment.data, usedforsecurity=False).hexdigest(),
        "type": attachment.attachment_type,
        "dateCreated": _iso(attachment.received_at),
    }


def event_json(stored: StoredEvent) -> dict[str, Any]:
    """A stored event in the shape of Sentry's event details (``title``, ``metadata``, ``entries``, ...)."""
    data = stored.data if isinstance(stored.data, dict) else {}
    exception = data.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    values = [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []
    last = values[-1] if values else {}
    message = stored.message or ""
    metadata: dict[str, Any] = {"type": last.get("type"), "value": last.get("value")} if values else {"title": message}
    title = message or (str(last.get("type") or "") if values else "") or "<untitled>"
    entries: list[dict[str, Any]] = []
    if values:
        entries.append({"type": "exception", "data": {"values": values}})
    for key, kind in (("breadcrumbs", "breadcrumbs"), ("request", "request")):
        value = data.get(key)
        if isinstance(value, dict):
            entries.append({"type": kind, "data": value})
        elif isinstance(value, list):
            entries.append({"type": kind, "data": {"values": value}})
    if message and not values:
        entries.append({"type": "message", "data": {"formatted": message}})
    tags = data.get("tags")
    pairs = (
        tags.items()
        if isinstance(tags, dict)
        else (t for t in tags if isinstance(t, list) and len(t) == 2)
        if isinstance(tags, list)
        else ()
    )
    return {
        "id": stored.event_id,
        "eventID": stored.event_id,
        "projectID": stored.project_id,
        "type": stored.type,
        "title": title,
        "message": message,
        "level": stored.level,
        "platform": data.get("platform") if isinstance(data.get("platform"), str) else None,
        "dateCreated": _iso(stored.timestamp if stored.timestamp is not None else stored.received_at),
        "dateReceived": _iso(stored.received_at),
        "release": data.get("release") if isinstance(data.get("release"), str) else None,
        "environment": data.get("environment") if isinstance(data.get("environment"), str) else None,
        "metadata": metadata,
        "tags": [{"key": str(key), "value": str(value)} for key, value in pairs],
        "contexts": data.get("contexts") if isinstance(data.get("contexts"), dict) else {},
        "user": data.get("user") if isinstance(data.get("user"), dict) else None,
        "sdk": data.get("sdk") if isinstance(data.get("sdk"), dict) else None,
        "entries": entries,
    }


def _iso(seconds: float) -> str | None:
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None
