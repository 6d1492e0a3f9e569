"""What the API returns, as frozen dataclasses.

:class:`UserFeedback` and its parts (:class:`NameVersion`, :class:`Device`, :class:`Locale`,
:class:`FeedbackUser`), :class:`Page` and :class:`FeedbackAttachment`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from ._values import _format_datetime, _int, _obj, _parse_datetime, _strings, _tags, _text


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
