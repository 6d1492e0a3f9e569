"""The endpoint's options: one frozen, validated object."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._feedback import MAX_MESSAGE_LENGTH

__all__ = ["DEFAULT_ALLOWED_CONTENT_TYPES", "EndpointOptions", "RateLimit"]

MiB = 1024 * 1024

#: What an attachment may be by default: screenshots, plain text and log files, JSON.
DEFAULT_ALLOWED_CONTENT_TYPES: tuple[str, ...] = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/x-log",
    "application/json",
)
#: Bounds past which an option value is a mistake.
_MAX_BODY = 1024 * MiB
_MAX_COUNT = 10_000


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")


def _check_number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` feedback posts per client address in ``per`` seconds (a token bucket).

    The bucket holds ``requests`` tokens and refills continuously at ``requests / per`` tokens a
    second, so a client may send a burst of ``requests`` and then one every ``per / requests``
    seconds.

    >>> RateLimit(10, 60.0).interval
    6.0
    """

    requests: int = 10
    per: float = 60.0

    def __post_init__(self) -> None:
        _check_int("rate_limit.requests", self.requests, 1, 1_000_000)
        _check_number("rate_limit.per", self.per, 0.001, 86_400.0)

    @property
    def interval(self) -> float:
        """Seconds for one token to come back."""
        return self.per / self.requests


@dataclass(frozen=True)
class EndpointOptions:
    """Everything a :class:`~sentry_feedback.endpoint.FeedbackEndpoint` can be told, validated when built.

    A wrong type raises ``TypeError``, a value out of range ``ValueError``. See the options
    table of the "Feedback endpoint" documentation page.
    """

    #: The largest request body, in bytes (multipart with attachments); larger ones get 413.
    max_body_size: int = 10 * MiB
    #: The largest JSON or URL-encoded body (no files travel in these), in bytes.
    max_form_size: int = 64 * 1024
    #: The longest message, in characters (at most Sentry's 4096).
    max_message_length: int = MAX_MESSAGE_LENGTH
    #: How many files one feedback may carry (``0``: none).
    max_attachments: int = 5
    #: The largest file, in bytes; ``None``: the client's ``max_attachment_size``. Never above it.
    max_attachment_size: int | None = None
    #: How many fields (files not counted) a form may have, ignored ones included.
    max_fields: int = 32
    #: Media types an attachment may have; ``"image/*"`` matches a whole type.
    allowed_content_types: tuple[str, ...] = DEFAULT_ALLOWED_CONTENT_TYPES
    #: Posts per client address; ``None`` turns the limit off.
    rate_limit: RateLimit | None = RateLimit()
    #: How many client addresses the rate limit remembers at most (the least recently seen go first).
    max_tracked_clients: int = 10_000
    #: Take the client's address from ``X-Forwarded-For`` (only behind a proxy that sets it).
    use_x_forwarded_for: bool = False
    #: How many proxies in front of the application append to ``X-Forwarded-For``.
    trusted_proxies: int = 1
    #: Origins (``https://shop.example.com``) besides the endpoint's own that may post; ``"*"``: any.
    allowed_origins: tuple[str, ...] = ()
    #: Link a feedback posted without ``associated_event_id`` to the request's last error.
    link_last_error: bool = True
    #: Wait for Sentry's answer (``send_feedback``) instead of queueing (``capture_feedback``).
    wait_for_delivery: bool = False
    #: Seconds to wait for Sentry's answer with ``wait_for_delivery``.
    delivery_timeout: float = 10.0
    #: ``contexts.feedback.source`` of every feedback the endpoint takes (``None``: none).
    source: str | None = "feedback-endpoint"

    def __post_init__(self) -> None:
        _check_int("max_body_size", self.max_body_size, 1, _MAX_BODY)
        _check_int("max_form_size", self.max_form_size, 1, _MAX_BODY)
        _check_int("max_message_length", self.max_message_length, 1, MAX_MESSAGE_LENGTH)
        _check_int("max_attachments", self.max_attachments, 0, 100)
        if self.max_attachment_size is not None:
            _check_int("max_attachment_size", self.max_attachment_size, 1, _MAX_BODY)
        _check_int("max_fields", self.max_fields, 1, 1000)
        _check_int("max_tracked_clients", self.max_tracked_clients, 1, 10_000_000)
        _check_int("trusted_proxies", self.trusted_proxies, 1, 32)
        _check_bool("use_x_forwarded_for", self.use_x_forwarded_for)
        _check_bool("link_last_error", self.link_last_error)
        _check_bool("wait_for_delivery", self.wait_for_delivery)
        _check_number("delivery_timeout", self.delivery_timeout, 0.0, 3600.0)
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise TypeError("rate_limit must be a RateLimit or None")
        if self.source is not None and not isinstance(self.source, str):
            raise TypeError("source must be a string or None")
        object.__setattr__(self, "allowed_content_types", _media_types(self.allowed_content_types))
        object.__setattr__(self, "allowed_origins", _origins(self.allowed_origins))

    def allows_content_type(self, media_type: str) -> bool:
        """Whether an attachment of ``media_type`` (lower case, without parameters) is accepted."""
        allowed = self.allowed_content_types
        return media_type in allowed or f"{media_type.split('/', 1)[0]}/*" in allowed or "*/*" in allowed


def _strings(name: str, value: object, example: str) -> list[str]:
    """``value``'s entries, stripped and lower-cased; ``TypeError`` unless it is a collection of strings."""
    if isinstance(value, str) or not isinstance(value, (tuple, list, frozenset, set)):
        raise TypeError(f"{name} must be a tuple of strings such as {example!r}")
    for entry in value:
        if not isinstance(entry, str):
            raise TypeError(f"{name} entries must be strings, not {type(entry).__name__}")
    return [entry.strip().lower() for entry in value]


def _media_types(value: object) -> tuple[str, ...]:
    found = _strings("allowed_content_types", value, "image/png")
    for media in found:
        kind, slash, sub = media.partition("/")
        if not slash or not kind or not sub or ";" in media or " " in media:
            raise ValueError(f"allowed_content_types: {media!r} is not a media type like 'image/png' or 'image/*'")
    return tuple(found)


def _origins(value: object) -> tuple[str, ...]:
    found = [origin.rstrip("/") for origin in _strings("allowed_origins", value, "https://shop.example.com")]
    for origin in found:
        if origin != "*" and (not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]):
            raise ValueError(f"allowed_origins: {origin!r} is not an origin like 'https://shop.example.com' or '*'")
    return tuple(found)
