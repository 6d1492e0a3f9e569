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

Import everything from here; the modules behind it are private: ``_client``
(:class:`FeedbackApi`), ``_models`` (what the API returns), ``_errors`` (the exceptions),
``_http`` (requests, retries, error answers), ``_urls`` (URLs, filters, paging),
``_links`` (``Link`` headers), ``_values`` and ``_files`` (helpers).
"""

from __future__ import annotations

from ._client import FeedbackApi
from ._errors import (
    ApiConnectionError,
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from ._links import Link, parse_link_header
from ._models import Device, FeedbackAttachment, FeedbackUser, Locale, NameVersion, Page, UserFeedback

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
