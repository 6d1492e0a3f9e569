"""sentry-feedback: user feedback for Python applications, delivered to Sentry.

>>> import sentry_feedback
>>> sentry_feedback.init(dsn="https://key@o1.ingest.sentry.io/42")
>>> sentry_feedback.capture_feedback("The pay button does nothing", email="jane@example.com")

Everything public is importable from this module; the submodules
``sentry_feedback.exceptions``, ``sentry_feedback.server`` (the local receiver) and
``sentry_feedback.testing`` are public too.
"""

from __future__ import annotations

import logging

from ._api import (
    add_attachment,
    add_breadcrumb,
    add_event_processor,
    capture_event,
    capture_feedback,
    capture_message,
    close,
    flush,
    init,
    is_enabled,
    last_event_id,
    send_feedback,
    set_context,
    set_extra,
    set_extras,
    set_level,
    set_tag,
    set_tags,
    set_user,
)
from ._attachment import Attachment
from ._client import Client
from ._client_reports import ClientReportRecorder, DiscardReason
from ._context import (
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
    set_client,
    use_isolation_scope,
    use_scope,
    with_isolation_scope,
    with_scope,
)
from ._dsn import Dsn
from ._envelope import Envelope, EnvelopeItem
from ._feedback import FeedbackFields
from ._options import Options
from ._ratelimit import RateLimiter
from ._scope import PropagationContext, Scope
from ._transport import FunctionTransport, HttpTransport, Transport, TransportResponse
from ._types import BeforeSend, Event, EventProcessor, Hint, Level
from ._version import __version__
from .exceptions import (
    DeliveryError,
    EnvelopeParseError,
    FeedbackDroppedError,
    FeedbackError,
    FeedbackTimeoutError,
    InvalidFeedbackError,
    NetworkError,
    RateLimitedError,
    SDKDisabledError,
    SentryFeedbackError,
    ServerError,
    TransportError,
)

__all__ = [
    "Attachment",
    "BeforeSend",
    "Client",
    "ClientReportRecorder",
    "DeliveryError",
    "DiscardReason",
    "Dsn",
    "Envelope",
    "EnvelopeItem",
    "EnvelopeParseError",
    "Event",
    "EventProcessor",
    "FeedbackDroppedError",
    "FeedbackError",
    "FeedbackFields",
    "FeedbackTimeoutError",
    "FunctionTransport",
    "Hint",
    "HttpTransport",
    "InvalidFeedbackError",
    "Level",
    "NetworkError",
    "Options",
    "PropagationContext",
    "RateLimitedError",
    "RateLimiter",
    "SDKDisabledError",
    "Scope",
    "SentryFeedbackError",
    "ServerError",
    "Transport",
    "TransportError",
    "TransportResponse",
    "__version__",
    "add_attachment",
    "add_breadcrumb",
    "add_event_processor",
    "capture_event",
    "capture_feedback",
    "capture_message",
    "close",
    "flush",
    "get_client",
    "get_current_scope",
    "get_global_scope",
    "get_isolation_scope",
    "init",
    "is_enabled",
    "last_event_id",
    "send_feedback",
    "set_client",
    "set_context",
    "set_extra",
    "set_extras",
    "set_level",
    "set_tag",
    "set_tags",
    "set_user",
    "use_isolation_scope",
    "use_scope",
    "with_isolation_scope",
    "with_scope",
]

# The library never prints unless the application configures logging (or debug=True).
logging.getLogger("sentry_feedback").addHandler(logging.NullHandler())
