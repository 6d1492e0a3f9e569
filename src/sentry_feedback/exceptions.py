"""Every exception the SDK defines, in one place.

Capture functions (``capture_feedback``, ``capture_message``, ...) never raise any of
these into your code: they log and count what went wrong instead. Only the explicitly
blocking :func:`sentry_feedback.send_feedback` raises, and only ``FeedbackError``
subclasses. The tree::

    SentryFeedbackError                 base of everything below
    ├── EnvelopeParseError (ValueError) bytes that are not a valid envelope
    ├── AttachmentReadError (OSError)   an attachment's file (or file object) that cannot be
    │                                   read within the limits: .reason, .quantity
    ├── TransportError                  a transport could not reach the server
    └── FeedbackError                   send_feedback could not deliver; has .event_id
        ├── InvalidFeedbackError (ValueError)   message blank/too long, bad ids
        ├── FeedbackDroppedError        an event processor or before_send_feedback
        │                               returned None or raised, or the queue was full
        ├── SDKDisabledError            no DSN and no transport: nothing can be sent
        ├── RateLimitedError            the server asked us to back off; .retry_after
        ├── FeedbackTimeoutError (TimeoutError) no answer within the timeout
        └── DeliveryError               the server or the network failed
            ├── ServerError             an HTTP error answer; .status, .detail
            └── NetworkError            refused, reset, timed out, DNS
"""

from __future__ import annotations

__all__ = [
    "AttachmentReadError",
    "DeliveryError",
    "EnvelopeParseError",
    "FeedbackDroppedError",
    "FeedbackError",
    "FeedbackTimeoutError",
    "InvalidFeedbackError",
    "NetworkError",
    "RateLimitedError",
    "SDKDisabledError",
    "SentryFeedbackError",
    "ServerError",
    "TransportError",
]


class SentryFeedbackError(Exception):
    """Base class of every exception raised by sentry_feedback."""


class EnvelopeParseError(SentryFeedbackError, ValueError):
    """The bytes given to :meth:`Envelope.parse` are not a valid envelope."""


class AttachmentReadError(SentryFeedbackError, OSError):
    """:meth:`Attachment.read` could not read the file within the limits.

    Missing or unreadable (``reason`` ``internal_sdk_error``), not a regular file (a FIFO,
    a device, a directory: ``invalid``), or larger than the limit (``invalid``). For an
    attachment made from a file object, the error met when it was read at creation.
    ``quantity`` is the bytes a client report counts for it (1 when the size is unknown).
    The background thread sends the feedback without such an attachment.
    """

    def __init__(self, message: str, *, reason: str, quantity: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.quantity = quantity


class TransportError(SentryFeedbackError):
    """Raised by a transport when the server could not be reached (refused, reset, timeout, DNS).

    The delivery pipeline counts the envelope's items as ``network_error``. Any other
    exception escaping a transport is counted as ``internal_sdk_error``.
    """


class FeedbackError(SentryFeedbackError):
    """:func:`send_feedback` could not deliver the feedback.

    ``event_id`` is the id the feedback was given, or ``None`` when it never got one.
    """

    def __init__(self, message: str, *, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


class InvalidFeedbackError(FeedbackError, ValueError):
    """The feedback is invalid: blank or over-long message, malformed ids, wrong types."""


class FeedbackDroppedError(FeedbackError):
    """The feedback was dropped before sending; ``reason`` is the client-report reason.

    Reasons: ``event_processor`` or ``before_send`` (a processor or the hook returned
    ``None``), ``callback_error`` (one of them raised; the exception is chained),
    ``queue_overflow`` (the transport queue was full), ``internal_sdk_error``.
    """

    def __init__(self, message: str, *, reason: str, event_id: str | None = None) -> None:
        super().__init__(message, event_id=event_id)
        self.reason = reason


class SDKDisabledError(FeedbackError):
    """The SDK has no DSN and no transport (or was closed), so nothing can be sent."""


class RateLimitedError(FeedbackError):
    """The server rate-limits feedback; ``retry_after`` is the seconds left, ``category`` the limit hit."""

    def __init__(self, message: str, *, retry_after: float, category: str, event_id: str | None = None) -> None:
        super().__init__(message, event_id=event_id)
        self.retry_after = retry_after
        self.category = category


class FeedbackTimeoutError(FeedbackError, TimeoutError):
    """No answer within the timeout. The feedback stays queued and may still be delivered."""


class DeliveryError(FeedbackError):
    """The feedback was sent but not accepted: see :class:`ServerError` and :class:`NetworkError`."""


class ServerError(DeliveryError):
    """The server answered with an HTTP error; ``status`` is the status code.

    ``detail`` is what the server said: the ``detail`` of its JSON answer, else the start
    of the body (about 200 characters, control characters escaped); ``""`` when it said
    nothing. The message ends with it: ``the server answered HTTP 401: invalid sentry_key 'x'``.
    """

    def __init__(self, message: str, *, status: int, detail: str = "", event_id: str | None = None) -> None:
        super().__init__(message, event_id=event_id)
        self.status = status
        self.detail = detail


class NetworkError(DeliveryError):
    """The server could not be reached: connection refused or reset, timeout, DNS failure."""
