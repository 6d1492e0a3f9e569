"""A feedback endpoint for server-rendered applications: ``POST /feedback``, and a form that posts to it.

>>> from sentry_feedback.endpoint import FeedbackEndpoint, feedback_form_html
>>> endpoint = FeedbackEndpoint()
>>> application = endpoint.mount_wsgi(application)          # any WSGI app; or endpoint.mount_asgi(app)

The endpoint takes a form post (``multipart/form-data`` with files, or URL-encoded) or JSON
with ``message``, ``email``, ``name``, ``url`` and ``associated_event_id``; checks sizes,
media types, the origin and the rate per client address; captures the feedback with the SDK
in the request's scope; and answers ``{"id": ...}`` or ``{"error": ..., "detail": ...}``.
Adapters: :mod:`sentry_feedback.endpoint.flask` (a blueprint),
:mod:`sentry_feedback.endpoint.django` (URL patterns to ``include``) and
:mod:`sentry_feedback.endpoint.starlette` (routes, for FastAPI too). See the "Feedback
endpoint" page of the documentation.
"""

from __future__ import annotations

from ._asgi import FeedbackAsgiApp
from ._endpoint import FeedbackEndpoint, RequestHead
from ._form import feedback_form_html
from ._limiter import AddressRateLimiter
from ._options import DEFAULT_ALLOWED_CONTENT_TYPES, EndpointOptions, RateLimit
from ._responses import EndpointResponse

__all__ = [
    "DEFAULT_ALLOWED_CONTENT_TYPES",
    "AddressRateLimiter",
    "EndpointOptions",
    "EndpointResponse",
    "FeedbackAsgiApp",
    "FeedbackEndpoint",
    "RateLimit",
    "RequestHead",
    "feedback_form_html",
]
