"""The client: :class:`FeedbackApi`, one method per operation of the User Feedback API."""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import certifi
import urllib3

from .._dsn import USER_AGENT
from ._errors import ApiError, BadRequest, NotFound
from ._files import _disposition_name, _safe_file_name
from ._http import _discard
from ._links import _find_link, parse_link_header
from ._models import FeedbackAttachment, Page, UserFeedback
from ._urls import _segment, _Urls
from ._values import _int, _obj, _text

_API_PATH = "/api/0"
_CHUNK = 64 * 1024


class FeedbackApi(_Urls):
    """A client of the User Feedback REST API of one organization.

    ``url`` is the server root (``"https://sentry.io"``, ``"http://127.0.0.1:8970"``);
    ``/api/0`` is appended unless it is there already. ``token`` is sent as
    ``Authorization: Bearer``. ``project`` is the default project slug of the per-item
    calls (without one, a feedback's project is looked up with one list request).
    ``timeout`` bounds connecting and each read, in seconds. ``429`` and ``503`` answers
    are retried ``retries`` times, waiting what ``Retry-After`` or
    ``X-Sentry-Rate-Limit-Reset`` say (else 1 s, then doubling), at most
    ``max_retry_wait`` seconds each. TLS is verified against ``ca_certs`` or certifi's
    bundle; ``pool`` replaces the client's own ``urllib3.PoolManager`` (and is then not
    closed by :meth:`close`). Thread-safe; use it as a context manager or call
    :meth:`close`.

    >>> with FeedbackApi("http://127.0.0.1:8970", "my-token", "local", project="default") as api:
    ...     feedback = api.create("The pay button does nothing", contact_email="jane@example.com")
    ...     api.resolve(feedback.id)
    """

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        *,
        project: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        max_retry_wait: float = 60.0,
        ca_certs: str | None = None,
        pool: urllib3.PoolManager | None = None,
        user_agent: str | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError("url must be a string")
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host, like https://sentry.io")
        path = parts.path.rstrip("/")
        if not path.endswith(_API_PATH):
            path += _API_PATH
        netloc = parts.netloc.rpartition("@")[2]  # credentials in the URL are never sent: drop them
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
        """The API base URL, ending with ``/api/0``."""
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be a non-empty string (a Sentry auth token)")
        if any(not (33 <= ord(char) <= 126) for char in token.strip()):
            raise ValueError("token contains characters that cannot be sent in an HTTP header")
        self._token = token.strip()
        self._org_segment = _segment(org, "org")
        self.org = org
        """The organization slug."""
        if project is not None:
            _segment(project, "project")
        self.project = project
        """The default project slug of the per-item calls, or None."""
        if not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
            raise ValueError("timeout must be a positive number of seconds")
        if not (isinstance(retries, int) and retries >= 0):
            raise ValueError("retries must be an int >= 0")
        if not (isinstance(max_retry_wait, (int, float)) and max_retry_wait >= 0):  # inf: no cap; NaN refused
            raise ValueError("max_retry_wait must be a number >= 0")
        self.timeout = float(timeout)
        self.retries = retries
        self.max_retry_wait = float(max_retry_wait)
        self._own_pool = pool is None
        self._pool = pool or urllib3.PoolManager(
            num_pools=4, maxsize=4, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs or certifi.where()
        )
        self._timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        # No connection or status retries by urllib3 (this class decides); redirects are
        # followed, and urllib3 drops Authorization when one leaves the host.
        self._retry = urllib3.Retry(
            total=None, connect=0, read=0, status=0, other=0, redirect=5, raise_on_redirect=False
        )
        self._user_agent = user_agent or f"{USER_AGENT} (api)"
        self._closed = threading.Event()
        self._projects: dict[str, str] = {}
        self._projects_lock = threading.Lock()

    @classmethod
    def from_env(cls, **overrides: Any) -> FeedbackApi:
        """A client from ``SENTRY_URL`` (default ``https://sentry.io``), ``SENTRY_AUTH_TOKEN``,
        ``SENTRY_ORG`` and ``SENTRY_PROJECT``; keyword arguments override them and pass the
        other options of the constructor.

        >>> api = FeedbackApi.from_env(timeout=5)

        Raises ``ValueError`` when no token or no organization is known.
        """
        env = os.environ
        options: dict[str, Any] = {
            "url": env.get("SENTRY_URL") or "https://sentry.io",
            "token": env.get("SENTRY_AUTH_TOKEN") or None,
            "org": env.get("SENTRY_ORG") or None,
            "project": env.get("SENTRY_PROJECT") or None,
        }
        options.update(overrides)
        if not options["token"]:
            raise ValueError("no auth token: set SENTRY_AUTH_TOKEN or pass token=")
        if not options["org"]:
            raise ValueError("no organization: set SENTRY_ORG or pass org=")
        return cls(**options)

    def __repr__(self) -> str:
        return f"FeedbackApi(url={self.url!r}, org={self.org!r}, project={self.project!r})"

    def __enter__(self) -> FeedbackApi:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (of the client's own pool) and end any retry wait; idempotent.

        Calls after ``close()`` raise :class:`ApiConnectionError`.
        """
        self._closed.set()
        if self._own_pool:
            self._pool.clear()

    # -- listing ----------------------------------------------------------------------

    def list(
        self,
        *,
        query: str | None = None,
        environment: str | Sequence[str] | None = None,
        project: str | int | Sequence[str | int] | None = None,
        sort: str | None = None,
        stats_period: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        per_page: int | None = None,
        field: Sequence[str] | None = None,
        query_referrer: str | None = None,
        limit: int | None = None,
    ) -> Iterator[UserFeedback]:
        """Iterate over the matching feedback, page after page (``Link: rel="next"``).

        The filters are the API's query parameters: ``query`` (Sentry search syntax,
        e.g. ``"status:unresolved has:error"``), ``environment`` and ``project`` (one or
        several; project ids or slugs), ``sort`` (``"-timestamp"``, ``"timestamp"``,
        ``"projectId"``, ``"-projectId"``), ``stats_period`` (``"24h"``, ``"14d"``) or
        ``start`` and ``end`` (datetimes, naive means UTC, or ISO text), ``per_page``
        (1..100), ``field`` (return only these attributes), ``query_referrer``. ``limit``
        stops after that many items (and sets ``per_page`` to match when not given).
        Requests are made lazily, as the iteration goes.

        >>> for feedback in api.list(query="status:unresolved", environment="production", limit=20):
        ...     print(feedback.message)
        """
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError("limit must be an int >= 0")
        if per_page is None and limit is not None:
            per_page = min(max(limit, 1), 100)
        params = self._filters(
            query, environment, project, sort, stats_period, start, end, per_page, field, query_referrer
        )
        return self._iterate(params, limit)

    def page(
        self,
        *,
        query: str | None = None,
        environment: str | Sequence[str] | None = None,
        project: str | int | Sequence[str | int] | None = None,
        sort: str | None = None,
        stats_period: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        per_page: int | None = None,
        field: Sequence[str] | None = None,
        query_referrer: str | None = None,
        offset: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of matching feedback, with the total (``hits``) and the cursors around it.

        Takes the filters of :meth:`list`, plus ``offset`` or ``cursor`` (an opaque
        cursor from a previous :class:`Page`).

        >>> first = api.page(query="has:error", per_page=25)
        >>> second = api.page(query="has:error", per_page=25, cursor=first.next_cursor)
        """
        params = self._filters(
            query, environment, project, sort, stats_period, start, end, per_page, field, query_referrer
        )
        if offset is not None:
            params.append(("offset", str(offset)))
        if cursor is not None:
            params.append(("cursor", cursor))
        response, body = self._request_json("GET", self._list_url(params))
        links = parse_link_header(response.headers.get("Link", ""))
        next_link, previous_link = _find_link(links, "next"), _find_link(links, "previous")
        has_next = bool(next_link and next_link.results is not False)
        has_previous = bool(previous_link and previous_link.results is not False)
        hits = _int(response.headers.get("X-Hits"))
        return Page(
            items=self._items(body),
            hits=hits,
            next_cursor=next_link.cursor if next_link and has_next else None,
            previous_cursor=previous_link.cursor if previous_link and has_previous else None,
            has_next=has_next,
            has_previous=has_previous,
        )

    # -- one feedback -----------------------------------------------------------------

    def get(self, feedback_id: str, *, project: str | None = None) -> UserFeedback:
        """The feedback ``feedback_id``; :class:`NotFound` when there is none."""
        url = self._item_url(feedback_id, project)
        return UserFeedback.from_json(self._data(self._request_json("GET", url)[1]))

    def create(self, message: str | None = None, *, project: str | None = None, **fields: Any) -> UserFeedback:
        """Create a feedback; return it as stored.

        ``fields`` are attributes of the seed's create body (``contact_email``, ``name``,
        ``url``, ``error_ids``, ``trace_ids``, ``replay_id``, ``environment``,
        ``release``, ``tags``, ``user``, ``timestamp``, ...), or the whole body as
        ``data={...}``. ``project`` (slug or id, default: the client's project) may be
        left out when the server has one project. Datetimes are sent as ISO 8601 UTC.

        >>> api.create("Checkout is broken", contact_email="jane@example.com", tags={"page": "checkout"})
        """
        body: dict[str, Any] = {}
        data = fields.pop("data", None)
        if data is not None:
            if not isinstance(data, Mapping):
                raise TypeError("data= must be a mapping (the create body)")
            body.update(data)
        body.update(fields)
        if message is not None:
            body["message"] = message
        if "message" not in body:
            raise TypeError("create() needs a message")
        project = project if project is not None else body.get("project", self.project)
        if project is not None:
            body["project"] = project
        url = self._org_url("user-feedback")
        return UserFeedback.from_json(self._data(self._request_json("POST", url, {"data": body})[1]))

    def update(self, feedback_id: str, *, project: str | None = None, **changes: Any) -> UserFeedback:
        """Change attributes of a feedback (``PATCH``; the API takes ``status``); return it.

        >>> api.update(feedback_id, status="resolved")
        """
        if not changes:
            raise ValueError("update() needs at least one change, like status='resolved'")
        url = self._item_url(feedback_id, project)
        return UserFeedback.from_json(self._data(self._request_json("PATCH", url, {"data": changes})[1]))

    def resolve(self, feedback_id: str, *, project: str | None = None) -> UserFeedback:
        """Mark a feedback resolved; return it."""
        return self.update(feedback_id, project=project, status="resolved")

    def unresolve(self, feedback_id: str, *, project: str | None = None) -> UserFeedback:
        """Mark a feedback unresolved again; return it."""
        return self.update(feedback_id, project=project, status="unresolved")

    def delete(self, feedback_id: str, *, project: str | None = None) -> None:
        """Delete a feedback and its attachments."""
        url = self._item_url(feedback_id, project)
        self._request_json("DELETE", url)
        with self._projects_lock:
            self._projects.pop(feedback_id, None)

    # -- attachments and events ------------------------------------------------------

    def attachments(self, feedback_id: str, *, project: str | None = None) -> builtins.list[FeedbackAttachment]:
        """The files attached to a feedback."""
        body = self._request_json("GET", self._item_url(feedback_id, project, "attachments"))[1]
        data = self._data(body)
        items = data if isinstance(data, builtins.list) else []
        return [FeedbackAttachment.from_json(item) for item in items if isinstance(item, Mapping)]

    def download(self, feedback_id: str, attachment: str | FeedbackAttachment, *, project: str | None = None) -> bytes:
        """The content of one attachment (by id or as listed by :meth:`attachments`)."""
        response = self._request("GET", self._attachment_url(feedback_id, attachment, project))
        try:
            return response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise self._connection_error("GET", response.geturl() or "", exc) from exc
        finally:
            _discard(response)

    def download_to(
        self,
        feedback_id: str,
        attachment: str | FeedbackAttachment,
        path_or_dir: str | os.PathLike[str],
        *,
        project: str | None = None,
    ) -> Path:
        """Stream one attachment to disk; return the file's path.

        When ``path_or_dir`` is an existing folder, the file goes into it, named after the
        attachment's name (else the ``Content-Disposition`` file name, else its id),
        made safe: no folders, no ``..``, no leading dots, no control characters. So
        ``"../../etc/passwd"`` is saved as ``folder/passwd``. Otherwise ``path_or_dir``
        is the file's path. The file appears complete or not at all (written to a
        temporary file, then renamed); an existing file is replaced.

        >>> for attachment in api.attachments(feedback_id):
        ...     api.download_to(feedback_id, attachment, "downloads/")
        """
        target = Path(path_or_dir)
        attachment_id = attachment.id if isinstance(attachment, FeedbackAttachment) else attachment
        url = self._attachment_url(feedback_id, attachment, project)
        response = self._request("GET", url, stream=True)
        try:
            if target.is_dir():
                listed = attachment.name if isinstance(attachment, FeedbackAttachment) else None
                name = listed or _disposition_name(response.headers.get("Content-Disposition"))
                folder = target
                target = folder / _safe_file_name(name, f"attachment-{attachment_id}")
                if target.resolve().parent != folder.resolve():  # pragma: no cover - the name is safe
                    raise ValueError("refusing to write outside the folder")
            handle, temporary = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=target.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    for chunk in response.stream(_CHUNK):
                        out.write(chunk)
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except urllib3.exceptions.HTTPError as exc:
            raise self._connection_error("GET", url, exc) from exc
        finally:
            _discard(response)
        return target

    def event(self, event_id: str, *, project: str | None = None) -> dict[str, Any]:
        """The stored error (or message) event ``event_id``, e.g. one of a feedback's ``error_ids``.

        Without a project (argument or client default), the project is looked up with
        Sentry's ``/organizations/{org}/eventids/{event_id}/``.

        >>> feedback = api.get(feedback_id)
        >>> error = api.event(feedback.error_ids[0], project=feedback.project)
        >>> error["title"]
        """
        project = project or self.project
        if project is None:
            url = self._org_url("eventids", event_id)
            try:
                found = self._data(self._request_json("GET", url)[1])
            except NotFound as exc:
                raise NotFound(
                    f"event {event_id} was not found in organization {self.org!r}; if it exists, pass project=",
                    status=404,
                    detail=exc.detail,
                    headers=exc.headers,
                    method="GET",
                    url=url,
                ) from exc
            found = _obj(found)
            if isinstance(found.get("event"), Mapping):
                return dict(found["event"])
            project = _text(found.get("projectSlug"))
            if not project:
                raise BadRequest(
                    f"cannot tell which project event {event_id} belongs to; pass project=", status=400, url=url
                )
        url = self._project_url(project, "events", event_id)
        body = self._request_json("GET", url)[1]
        if isinstance(body, Mapping) and set(body) == {"data"} and isinstance(body["data"], Mapping):
            body = body["data"]
        if not isinstance(body, Mapping):
            raise ApiError("the server answered with something that is not an event", status=200, url=url)
        return dict(body)
