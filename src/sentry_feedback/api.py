"""A typed client for the User Feedback REST API (Sentry's, or the local server's).

:class:`FeedbackApi` lists, reads, creates, resolves and deletes user feedback, downloads
its attachments and fetches the error events it links to. It talks to
``{url}/api/0`` with a Bearer token, follows ``Link`` pagination, retries ``429`` and
``503`` answers (honouring ``Retry-After`` and ``X-Sentry-Rate-Limit-Reset``) and maps
error answers to :class:`ApiError` subclasses. Only urllib3 and certifi are needed::

    from sentry_feedback.api import FeedbackApi, NotFound

    with FeedbackApi("https://sentry.io", token, "acme", project="web") as api:
        for feedback in api.list(query="status:unresolved", stats_period="24h", limit=50):
            print(feedback.id, feedback.timestamp, feedback.message)
        try:
            api.resolve("1ffe0775ac0f4417aed9de36d9f6f8dc")
        except NotFound:
            print("already deleted")

``FeedbackApi.from_env()`` reads ``SENTRY_URL``, ``SENTRY_AUTH_TOKEN``, ``SENTRY_ORG`` and
``SENTRY_PROJECT``. The token never appears in ``repr()`` or in exception messages.
"""

from __future__ import annotations

import builtins
import contextlib
import email.message
import email.utils
import json
import math
import os
import re
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple

import certifi
import urllib3

from ._dsn import USER_AGENT
from .exceptions import SentryFeedbackError

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "BadRequest",
    "Device",
    "FeedbackApi",
    "FeedbackAttachment",
    "FeedbackUser",
    "Forbidden",
    "Link",
    "Locale",
    "NameVersion",
    "NotFound",
    "Page",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "UserFeedback",
    "parse_link_header",
]

_API_PATH = "/api/0"
_RETRY_STATUSES = frozenset({429, 503})
_MAX_ERROR_BODY = 1 << 20  # bytes of an error answer read for its detail
_CHUNK = 64 * 1024
_EPOCH = "1970-01-01T00:00:00Z"
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CONNECTION_PREFIX = re.compile(r"^\w*HTTPS?Connection(?:Pool)?\([^)]*\):\s*")  # urllib3's "HTTPConnection(host=..)"


# -- errors ---------------------------------------------------------------------------


class ApiError(SentryFeedbackError):
    """An error answer from the API, or a request that could not be made.

    ``status`` is the HTTP status (0 when no answer came), ``detail`` the server's
    ``detail`` text, ``errors`` the per-field problems of a ``400``
    (``{"message": ["This field is required."]}``), ``headers`` the answer's headers
    (case-insensitive), ``method`` and ``url`` the request. The message never contains the token.

    >>> try:
    ...     api.get("0" * 32)
    ... except ApiError as error:
    ...     print(error.status, error.detail)
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        detail: str = "",
        errors: Mapping[str, builtins.list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.errors: Mapping[str, builtins.list[str]] = MappingProxyType(dict(errors or {}))
        self.headers: Mapping[str, str] = MappingProxyType(urllib3.HTTPHeaderDict(headers or {}))
        self.method = method
        self.url = url


class BadRequest(ApiError):
    """``400``: a bad parameter or body; see :attr:`errors` for per-field problems.

    Also raised without a request when the client cannot tell which project a
    feedback belongs to (pass ``project=``).
    """


class Unauthorized(ApiError):
    """``401``: the token is missing, invalid or expired."""


class Forbidden(ApiError):
    """``403``: the token may not do this (for example a read-only token that writes)."""


class NotFound(ApiError):
    """``404``: no such organization, project, feedback, attachment or event."""


class RateLimited(ApiError):
    """``429`` still, after the retries; ``retry_after`` is the seconds the server asked for (or None)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """``5xx``: the server failed (``503`` only after the retries)."""


class ApiConnectionError(ApiError):
    """No answer (``status`` 0): connection refused or reset, DNS failure, timeout, TLS error, closed client."""


_ERROR_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    429: RateLimited,
}


# -- Link headers ---------------------------------------------------------------------


class Link(NamedTuple):
    """One link of a ``Link`` header: its URL and its parameters (names lowercased).

    >>> parse_link_header('<https://x/?cursor=1>; rel="next"; results="true"; cursor="1"')[0].rel
    'next'
    """

    url: str
    params: Mapping[str, str]

    @property
    def rel(self) -> str | None:
        """The ``rel`` parameter, or None."""
        return self.params.get("rel")

    @property
    def results(self) -> bool | None:
        """Sentry's ``results`` parameter as a bool (None when absent or not true/false)."""
        value = self.params.get("results", "").strip().lower()
        return True if value == "true" else False if value == "false" else None

    @property
    def cursor(self) -> str | None:
        """Sentry's ``cursor`` parameter, else the URL's ``cursor`` query parameter, else None."""
        if "cursor" in self.params:
            return self.params["cursor"]
        values = urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query).get("cursor")
        return values[0] if values else None


def parse_link_header(value: str) -> builtins.list[Link]:
    """Parse an RFC 8288 ``Link`` header the way Sentry writes it; never raises.

    Links are separated by commas; a comma inside ``<...>`` or inside a quoted parameter
    value does not split them. Parameter values may be quoted (with ``\\`` escapes) or
    bare. Text that is not a link is skipped.

    >>> parse_link_header('<https://h/?a=1,2>; rel="next"; results="false"; cursor="0:10:0"')
    [Link(url='https://h/?a=1,2', params={'rel': 'next', 'results': 'false', 'cursor': '0:10:0'})]
    """
    links: builtins.list[Link] = []
    text = value if isinstance(value, str) else ""
    pos, end = 0, len(text)
    while pos < end:
        start = text.find("<", pos)
        if start < 0:
            break
        close = text.find(">", start + 1)
        if close < 0:
            break
        url = text[start + 1 : close].strip()
        params: dict[str, str] = {}
        pos = close + 1
        while pos < end:  # parameters: ; name[=value]
            while pos < end and text[pos] in " \t":
                pos += 1
            if pos >= end or text[pos] == ",":
                pos += 1
                break
            if text[pos] != ";":  # junk: skip to the next link
                next_link = text.find(",", pos)
                pos = end if next_link < 0 else next_link + 1
                break
            pos += 1
            name_start = pos
            while pos < end and text[pos] not in "=;,":
                pos += 1
            name = text[name_start:pos].strip().lower()
            param_value = ""
            if pos < end and text[pos] == "=":
                pos += 1
                while pos < end and text[pos] in " \t":
                    pos += 1
                if pos < end and text[pos] == '"':
                    pos += 1
                    chars: builtins.list[str] = []
                    while pos < end and text[pos] != '"':
                        if text[pos] == "\\" and pos + 1 < end:
                            pos += 1
                        chars.append(text[pos])
                        pos += 1
                    pos += 1  # the closing quote
                    param_value = "".join(chars)
                else:
                    value_start = pos
                    while pos < end and text[pos] not in ";,":
                        pos += 1
                    param_value = text[value_start:pos].strip()
            if name and name not in params:
                params[name] = param_value
        links.append(Link(url, params))
    return links


def _find_link(links: Sequence[Link], rel: str) -> Link | None:
    for link in links:
        if rel in (link.rel or "").lower().split():
            return link
    return None


# -- value helpers --------------------------------------------------------------------


_ISO_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?"
)


def _parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 text (no zone means UTC) or Unix seconds as an aware UTC datetime; None if not one."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc) if math.isfinite(value) else None
        if not isinstance(value, str):
            return None
        match = _ISO_DATETIME.fullmatch(value.strip())
        if match is None:
            return None
        year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
        tz = timezone.utc
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            tz = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _format_datetime(moment: datetime) -> str:
    """A datetime as ISO 8601 UTC with ``Z`` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds").replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    """A string as is, a number as its text, anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (builtins.list, tuple)):
        return ()
    return tuple(text for text in map(_text, value) if text is not None)


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 30:
        return int(value.strip())
    return None


def _tags(value: Any) -> Mapping[str, str | tuple[str, ...]]:
    tags: dict[str, str | tuple[str, ...]] = {}
    for key, tag in _obj(value).items():
        if not isinstance(key, str):
            continue
        if isinstance(tag, (builtins.list, tuple)):
            tags[key] = _strings(tag)
        elif (text := _text(tag)) is not None:
            tags[key] = text
        elif isinstance(tag, bool):
            tags[key] = "true" if tag else "false"
    return MappingProxyType(tags)


# -- items ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NameVersion:
    """A ``{name, version}`` pair: the browser, os and sdk of a feedback."""

    name: str | None = None
    version: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> NameVersion:
        """From an object (tolerant: anything else gives empty values)."""
        data = _obj(value)
        return cls(_text(data.get("name")), _text(data.get("version")))

    def to_json(self) -> dict[str, Any]:
        """Back to ``{"name": ..., "version": ...}``."""
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class Device:
    """The device a feedback was sent from."""

    brand: str | None = None
    family: str | None = None
    model: str | None = None
    name: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> Device:
        """From an object (tolerant)."""
        data = _obj(value)
        return cls(*(_text(data.get(key)) for key in ("brand", "family", "model", "name")))

    def to_json(self) -> dict[str, Any]:
        """Back to the seed's ``device`` object."""
        return {"brand": self.brand, "family": self.family, "model": self.model, "name": self.name}


@dataclass(frozen=True)
class Locale:
    """The user's language and time zone."""

    lang: str | None = None
    timezone: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> Locale:
        """From an object (tolerant)."""
        data = _obj(value)
        return cls(_text(data.get("lang")), _text(data.get("timezone")))

    def to_json(self) -> dict[str, Any]:
        """Back to the seed's ``locale`` object."""
        return {"lang": self.lang, "timezone": self.timezone}


@dataclass(frozen=True)
class FeedbackUser:
    """The user who sent a feedback (as the SDK knew them)."""

    display_name: str | None = None
    email: str | None = None
    id: str | None = None
    ip: str | None = None
    username: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> FeedbackUser:
        """From an object (tolerant; a numeric id becomes text)."""
        data = _obj(value)
        return cls(*(_text(data.get(key)) for key in ("display_name", "email", "id", "ip", "username")))

    def to_json(self) -> dict[str, Any]:
        """Back to the seed's ``user`` object."""
        return {
            "display_name": self.display_name,
            "email": self.email,
            "id": self.id,
            "ip": self.ip,
            "username": self.username,
        }


@dataclass(frozen=True)
class UserFeedback:
    """One user feedback as the API returns it: every seed attribute, typed.

    Absent or malformed values are ``None`` (or empty), so :meth:`from_json` takes
    whatever a server sends. ``timestamp`` is an aware UTC datetime; ``tags`` and
    ``request`` are read-only mappings; ``project``, ``project_id``, ``name`` and
    ``attachment_count`` are extensions that a server may leave out. ``raw`` is the item
    as received. Two feedbacks are equal when all their attributes (not ``raw``) are.

    >>> feedback = UserFeedback.from_json({"id": "1ffe0775ac0f4417aed9de36d9f6f8dc", "message": "Nice!"})
    >>> feedback.message, feedback.status, feedback.tags
    ('Nice!', '', mappingproxy({}))
    """

    id: str
    message: str = ""
    status: str = ""
    timestamp: datetime | None = None
    contact_email: str | None = None
    dist: str | None = None
    environment: str | None = None
    platform: str | None = None
    release: str | None = None
    replay_id: str | None = None
    url: str | None = None
    error_ids: tuple[str, ...] = ()
    trace_ids: tuple[str, ...] = ()
    tags: Mapping[str, str | tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    browser: NameVersion = field(default_factory=NameVersion)
    os: NameVersion = field(default_factory=NameVersion)
    sdk: NameVersion = field(default_factory=NameVersion)
    device: Device = field(default_factory=Device)
    locale: Locale = field(default_factory=Locale)
    user: FeedbackUser = field(default_factory=FeedbackUser)
    request: Mapping[str, Any] | None = None
    project: str | None = None
    project_id: str | None = None
    name: str | None = None
    attachment_count: int | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    def __hash__(self) -> int:
        return hash((UserFeedback, self.id))

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> UserFeedback:
        """Build from one API item. Never raises: missing or odd values become None or empty.

        A timestamp without a zone is UTC; Unix seconds are accepted too.
        """
        data = _obj(item)
        request = data.get("request")
        return cls(
            id=_text(data.get("id")) or "",
            message=_text(data.get("message")) or "",
            status=_text(data.get("status")) or "",
            timestamp=_parse_datetime(data.get("timestamp")),
            contact_email=_text(data.get("contact_email")),
            dist=_text(data.get("dist")),
            environment=_text(data.get("environment")),
            platform=_text(data.get("platform")),
            release=_text(data.get("release")),
            replay_id=_text(data.get("replay_id")),
            url=_text(data.get("url")),
            error_ids=_strings(data.get("error_ids")),
            trace_ids=_strings(data.get("trace_ids")),
            tags=_tags(data.get("tags")),
            browser=NameVersion.from_json(data.get("browser")),
            os=NameVersion.from_json(data.get("os")),
            sdk=NameVersion.from_json(data.get("sdk")),
            device=Device.from_json(data.get("device")),
            locale=Locale.from_json(data.get("locale")),
            user=FeedbackUser.from_json(data.get("user")),
            request=MappingProxyType(dict(request)) if isinstance(request, Mapping) else None,
            project=_text(data.get("project")),
            project_id=_text(data.get("project_id")),
            name=_text(data.get("name")),
            attachment_count=_int(data.get("attachment_count")),
            raw=MappingProxyType(dict(data)),
        )

    def to_json(self) -> dict[str, Any]:
        """Back to the seed's item shape (the extensions only when known); JSON-ready."""
        item: dict[str, Any] = {
            "browser": self.browser.to_json(),
            "contact_email": self.contact_email,
            "device": self.device.to_json(),
            "dist": self.dist,
            "environment": self.environment,
            "error_ids": builtins.list(self.error_ids),
            "id": self.id,
            "locale": self.locale.to_json(),
            "message": self.message,
            "os": self.os.to_json(),
            "platform": self.platform,
            "release": self.release,
            "replay_id": self.replay_id,
            "request": None if self.request is None else dict(self.request),
            "sdk": self.sdk.to_json(),
            "status": self.status,
            "tags": {
                key: value if isinstance(value, str) else builtins.list(value) for key, value in self.tags.items()
            },
            "timestamp": None if self.timestamp is None else _format_datetime(self.timestamp),
            "trace_ids": builtins.list(self.trace_ids),
            "url": self.url,
            "user": self.user.to_json(),
        }
        for key, value in (
            ("project", self.project),
            ("project_id", self.project_id),
            ("name", self.name),
            ("attachment_count", self.attachment_count),
        ):
            if value is not None:
                item[key] = value
        return item


@dataclass(frozen=True)
class Page:
    """One page of :meth:`FeedbackApi.page`.

    ``hits`` is the server's ``X-Hits`` (total matching), or None. ``next_cursor`` and
    ``previous_cursor`` are the opaque cursors to pass as ``cursor=`` for the adjacent
    pages; each is None when there is no such page (``has_next`` / ``has_previous``).

    >>> page = api.page(per_page=50)
    >>> while page.has_next:
    ...     page = api.page(per_page=50, cursor=page.next_cursor)
    """

    items: list[UserFeedback]
    hits: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    has_next: bool = False
    has_previous: bool = False


@dataclass(frozen=True)
class FeedbackAttachment:
    """A file attached to a feedback (a screenshot, a log), as :meth:`FeedbackApi.attachments` lists it."""

    id: str
    name: str
    mimetype: str | None = None
    size: int | None = None
    sha1: str | None = None
    type: str | None = None
    date_created: datetime | None = None

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> FeedbackAttachment:
        """Build from one API attachment object. Never raises."""
        data = _obj(item)
        return cls(
            id=_text(data.get("id")) or "",
            name=_text(data.get("name")) or "",
            mimetype=_text(data.get("mimetype")),
            size=_int(data.get("size")),
            sha1=_text(data.get("sha1")),
            type=_text(data.get("type")),
            date_created=_parse_datetime(data.get("dateCreated", data.get("date_created"))),
        )


# -- files ----------------------------------------------------------------------------

_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com\d|lpt\d)(\..*)?")
_MAX_NAME = 200


def _safe_file_name(name: str | None, fallback: str) -> str:
    """A file name that stays in its folder: no directories, no ``..``, no control characters.

    ``"../../etc/passwd"`` gives ``"passwd"``; leading dots are dropped (no hidden
    files); an empty result gives ``fallback`` (made safe the same way).
    """
    for candidate in (name, fallback, "attachment"):
        text = (candidate or "").replace("\\", "/").rsplit("/", 1)[-1]
        text = _UNSAFE_CHARS.sub("_", text).strip().lstrip(".").rstrip(". ")
        if not text:
            continue
        if _WINDOWS_RESERVED.fullmatch(text):
            text = "_" + text
        if len(text) > _MAX_NAME:
            stem, dot, suffix = text.rpartition(".")
            suffix = suffix[:20] if dot and stem else ""
            text = text[: _MAX_NAME - len(suffix) - 1] + "." + suffix if suffix else text[:_MAX_NAME]
        return text
    return "attachment"  # pragma: no cover - the last candidate is always safe


def _disposition_name(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header: ``filename*`` (RFC 6266 prefers it), else ``filename``."""
    if not header:
        return None
    try:
        message = email.message.Message()
        message["content-disposition"] = header
        plain: str | None = None
        for key, value in (message.get_params(header="content-disposition") or [])[1:]:
            if key.lower() != "filename":
                continue
            if isinstance(value, tuple):  # filename*=UTF-8''...
                return str(email.utils.collapse_rfc2231_value(value))
            if plain is None and isinstance(value, str):
                plain = value
        return plain
    except Exception:  # a hostile header must not break a download
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return builtins.list(value)
    if isinstance(value, (NameVersion, Device, Locale, FeedbackUser, UserFeedback)):
        return value.to_json()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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


# -- the client -----------------------------------------------------------------------


class FeedbackApi:
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

    # -- HTTP -------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        if len(self._token) >= 3:
            text = text.replace(self._token, "[token]")
        return text

    def _request_json(self, method: str, url: str, payload: Any = None) -> tuple[urllib3.BaseHTTPResponse, Any]:
        """Make a request and parse its JSON answer (None for an empty one, like a ``204``)."""
        body = None
        if payload is not None:
            try:
                body = json.dumps(payload, default=_json_default, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise TypeError(f"cannot send this body as JSON: {exc}") from None
        response = self._request(method, url, body)
        try:
            data = response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise self._connection_error(method, url, exc) from exc
        finally:
            _discard(response)
        if not data.strip():
            return response, None
        try:
            return response, json.loads(data)
        except (ValueError, RecursionError):
            raise ApiError(
                f"HTTP {response.status} ({method} {urllib.parse.urlsplit(url).path}): the answer is not JSON",
                status=response.status,
                detail="the answer is not JSON",
                headers=response.headers,
                method=method,
                url=url,
            ) from None

    def _request(
        self, method: str, url: str, body: bytes | None = None, *, stream: bool = False
    ) -> urllib3.BaseHTTPResponse:
        """Send one request, retrying ``429``/``503``; return a successful answer (not yet read)."""
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json" if not stream else "*/*",
            "User-Agent": self._user_agent,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            if self._closed.is_set():
                raise ApiConnectionError(
                    f"{method} {url}: the client is closed", detail="the client is closed", method=method, url=url
                )
            try:
                response = self._pool.request(
                    method,
                    url,
                    body=body,
                    headers=headers,
                    timeout=self._timeout,
                    retries=self._retry,
                    preload_content=False,
                )
            except urllib3.exceptions.HTTPError as exc:
                raise self._connection_error(method, url, exc) from exc
            if response.status in _RETRY_STATUSES and attempt < self.retries:
                wait = _retry_wait(response.headers)
                wait = 2.0**attempt if wait is None else wait
                _discard(response)
                attempt += 1
                if self._closed.wait(min(wait, self.max_retry_wait, threading.TIMEOUT_MAX)):
                    raise ApiConnectionError(
                        f"{method} {url}: the client is closed", detail="the client is closed", method=method, url=url
                    )
                continue
            if response.status >= 300:
                raise self._error(method, url, response)
            return response

    def _connection_error(self, method: str, url: str, exc: Exception) -> ApiConnectionError:
        reason = getattr(exc, "reason", None) or exc
        detail = self._redact(_CONNECTION_PREFIX.sub("", str(reason)) or type(reason).__name__)
        message = self._redact(f"{method} {url}: could not get an answer: {detail}")
        return ApiConnectionError(message, detail=detail, method=method, url=url)

    def _error(self, method: str, url: str, response: urllib3.BaseHTTPResponse) -> ApiError:
        """The exception for an error answer, from its ``{"detail": ..., "errors": ...}`` body."""
        try:
            raw = response.read(_MAX_ERROR_BODY)
        except urllib3.exceptions.HTTPError:
            raw = b""
        finally:
            _discard(response)
        detail, errors = _error_body(raw)
        detail = self._redact(detail or response.reason or "")
        errors = {self._redact(key): [self._redact(problem) for problem in value] for key, value in errors.items()}
        status = response.status
        message = f"HTTP {status}"
        if response.reason:
            message += f" {response.reason}"
        message += f" ({method} {urllib.parse.urlsplit(url).path})"
        if detail:
            message += f": {detail}"
        if errors:
            message += " [" + "; ".join(f"{key}: {' '.join(value)}" for key, value in errors.items()) + "]"
        message = self._redact(message)
        kind = _ERROR_CLASSES.get(status) or (ServerError if status >= 500 else ApiError)
        common: dict[str, Any] = {
            "status": status,
            "detail": detail,
            "errors": errors,
            "headers": response.headers,
            "method": method,
            "url": url,
        }
        if kind is RateLimited:
            return RateLimited(message, retry_after=_retry_wait(response.headers), **common)
        return kind(message, **common)


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Finish with an answer: read what is left of a small body and give the connection back.

    A connection whose answer is not read to its end (a large error body, a download
    that failed half-way) is closed rather than put back in the pool.
    """
    with contextlib.suppress(Exception):
        if len(response.read(_MAX_ERROR_BODY)) >= _MAX_ERROR_BODY:
            response.close()
    with contextlib.suppress(Exception):
        response.release_conn()


def _retry_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``X-Sentry-Rate-Limit-Reset``."""
    retry_after = (headers.get("Retry-After") or "").strip()
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                moment = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError, IndexError, OverflowError):
                moment = None
            if moment is not None:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)
                return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())
        else:
            if math.isfinite(seconds):
                return max(0.0, seconds)
    reset = (headers.get("X-Sentry-Rate-Limit-Reset") or "").strip()
    if reset:
        try:
            epoch = float(reset)
        except ValueError:
            return None
        if math.isfinite(epoch):
            return max(0.0, epoch - time.time())
    return None


def _error_body(raw: bytes) -> tuple[str, dict[str, builtins.list[str]]]:
    """``(detail, per-field errors)`` of an error answer, whatever its shape."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", "replace").strip()
        return (" ".join(text.split())[:200] if text and not text.startswith("<") else ""), {}
    if not isinstance(body, dict):
        return (body if isinstance(body, str) else ""), {}
    detail = body.get("detail")
    if isinstance(detail, Mapping):  # {"detail": {"code": ..., "message": ...}}
        detail = detail.get("message") or detail.get("code")
    if not isinstance(detail, str):
        detail = "" if detail is None else json.dumps(detail, default=str)
    errors_obj = body.get("errors")
    if not isinstance(errors_obj, Mapping):  # DRF's bare {"field": ["problem"]}
        errors_obj = {key: value for key, value in body.items() if key != "detail"} if "detail" not in body else {}
    errors: dict[str, builtins.list[str]] = {}
    for key, value in errors_obj.items():
        problems = value if isinstance(value, builtins.list) else [value]
        errors[str(key)] = [
            problem if isinstance(problem, str) else json.dumps(problem, default=str) for problem in problems
        ]
    return detail, errors
