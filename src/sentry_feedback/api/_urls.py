"""Where the requests go: the API's URLs, the list filters, and the pages of a listing.

:class:`_Urls` is the part of :class:`~sentry_feedback.api.FeedbackApi` that builds
URLs (every path segment percent-encoded), finds the project of a feedback, and follows
``Link: rel="next"`` from page to page without sending the token to another host.
"""

from __future__ import annotations

import builtins
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import urllib3

from ._errors import BadRequest, NotFound
from ._http import _Requests
from ._links import _find_link, parse_link_header
from ._models import FeedbackAttachment, UserFeedback
from ._values import _format_datetime

_EPOCH = "1970-01-01T00:00:00Z"


def _segment(value: str | int, what: str) -> str:
    """One URL path segment, percent-encoded; empty, ``.`` and ``..`` are refused."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or text.strip() in ("", ".", ".."):
        raise ValueError(f"{what} must be a non-empty string other than '.' and '..'")
    return urllib.parse.quote(text, safe="")


def _many(value: Any) -> builtins.list[str]:
    """A repeatable query value: one value or a sequence of them, as strings."""
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [str(value)]
    return [str(item) for item in value]


def _search_value(text: str) -> str:
    """A value for Sentry's search syntax: bare when simple, else quoted."""
    if re.fullmatch(r"[\w.@:-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Urls(_Requests):
    """URLs, filters and pagination, for :class:`~sentry_feedback.api.FeedbackApi`.

    The attributes are set by ``FeedbackApi.__init__``.
    """

    url: str
    org: str
    project: str | None
    _org_segment: str
    _projects: dict[str, str]
    _projects_lock: threading.Lock

    # -- URLs -------------------------------------------------------------------------

    def _org_url(self, *segments: str) -> str:
        path = "/".join(_segment(segment, "id") for segment in segments)
        return f"{self.url}/organizations/{self._org_segment}/{path}/"

    def _project_url(self, project: str, *segments: str) -> str:
        path = "/".join(_segment(segment, "id") for segment in segments)
        return f"{self.url}/projects/{self._org_segment}/{_segment(project, 'project')}/{path}/"

    def _list_url(self, params: Sequence[tuple[str, str]]) -> str:
        query = urllib.parse.urlencode(builtins.list(params), doseq=True, quote_via=urllib.parse.quote)
        return self._org_url("user-feedback") + ("?" + query if query else "")

    def _item_url(self, feedback_id: str, project: str | None, *more: str) -> str:
        _segment(feedback_id, "feedback_id")
        return self._project_url(self._project_of(feedback_id, project), "user-feedback", feedback_id, *more)

    def _attachment_url(self, feedback_id: str, attachment: str | FeedbackAttachment, project: str | None) -> str:
        attachment_id = attachment.id if isinstance(attachment, FeedbackAttachment) else attachment
        _segment(attachment_id, "attachment id")
        return self._item_url(feedback_id, project, "attachments", attachment_id)

    def _project_of(self, feedback_id: str, project: str | None) -> str:
        """The project of a per-item call: the argument, the default, or looked up once."""
        if project is not None:
            return project
        if self.project is not None:
            return self.project
        with self._projects_lock:
            known = self._projects.get(feedback_id)
        if known is not None:
            return known
        end = datetime.now(timezone.utc) + timedelta(days=1)
        found = next(
            self._iterate(
                [
                    ("query", f"id:{_search_value(feedback_id)}"),
                    ("start", _EPOCH),
                    ("end", _format_datetime(end)),
                    ("per_page", "1"),
                ],
                1,
            ),
            None,
        )
        if found is None:
            raise NotFound(f"feedback {feedback_id} was not found in organization {self.org!r}", status=404)
        if not found.project:
            raise BadRequest(
                f"the server does not say which project feedback {feedback_id} belongs to; pass project=",
                status=400,
            )
        with self._projects_lock:
            if len(self._projects) >= 1024:
                self._projects.clear()
            self._projects[feedback_id] = found.project
        return found.project

    def _filters(
        self,
        query: str | None,
        environment: str | Sequence[str] | None,
        project: str | int | Sequence[str | int] | None,
        sort: str | None,
        stats_period: str | None,
        start: datetime | str | None,
        end: datetime | str | None,
        per_page: int | None,
        fields: Sequence[str] | None,
        query_referrer: str | None,
    ) -> builtins.list[tuple[str, str]]:
        params: builtins.list[tuple[str, str]] = []
        params.extend(("field", value) for value in _many(fields))
        params.extend(("environment", value) for value in _many(environment))
        params.extend(("project", value) for value in _many(project))
        for name, value in (
            ("query", query),
            ("sort", sort),
            ("statsPeriod", stats_period),
            ("start", start),
            ("end", end),
            ("per_page", per_page),
            ("queryReferrer", query_referrer),
        ):
            if isinstance(value, datetime):
                params.append((name, _format_datetime(value)))
            elif value is not None:
                params.append((name, str(value)))
        return params

    # -- pagination -------------------------------------------------------------------

    def _iterate(self, params: builtins.list[tuple[str, str]], limit: int | None) -> Iterator[UserFeedback]:
        count = 0
        if limit == 0:
            return
        url: str | None = self._list_url(params)
        seen: set[str] = set()
        while url is not None:
            seen.add(url)
            response, body = self._request_json("GET", url)
            items = self._items(body)
            for item in items:
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            url = self._next_url(response, url, params, bool(items))
            if url in seen:
                return

    def _next_url(
        self,
        response: urllib3.BaseHTTPResponse,
        current: str,
        params: Sequence[tuple[str, str]],
        had_items: bool,
    ) -> str | None:
        """Where the next page is: the ``rel="next"`` link while ``results="true"``.

        Its URL is used when it is on the API's own origin; otherwise (a proxy, a
        foreign host) only its cursor is, with this client's URL, so the token never goes
        to another host.
        """
        link = _find_link(parse_link_header(response.headers.get("Link", "")), "next")
        if link is None or link.results is False or (link.results is None and not had_items):
            return None
        target = urllib.parse.urljoin(current, link.url) if link.url else ""
        own, theirs = urllib.parse.urlsplit(self.url), urllib.parse.urlsplit(target)
        same_origin = (own.scheme, own.hostname, own.port) == (theirs.scheme, theirs.hostname, theirs.port)
        if target and same_origin and theirs.path.startswith(own.path + "/"):
            return target
        cursor = link.cursor
        if cursor is None:
            return None
        kept = [(name, value) for name, value in params if name not in ("cursor", "offset")]
        return self._list_url([*kept, ("cursor", cursor)])

    @staticmethod
    def _data(body: Any) -> Any:
        """The ``data`` of an answer (``{"data": ...}``), or the answer itself."""
        if isinstance(body, Mapping) and "data" in body:
            return body["data"]
        return body

    def _items(self, body: Any) -> builtins.list[UserFeedback]:
        data = self._data(body)
        items = data if isinstance(data, builtins.list) else []
        return [UserFeedback.from_json(item) for item in items if isinstance(item, Mapping)]
