"""The feedback endpoint as Starlette routes (FastAPI too).

>>> from sentry_feedback.endpoint.starlette import feedback_routes
>>> app = Starlette(routes=[..., *feedback_routes()])      # FastAPI: app.router.routes.extend(feedback_routes())

This module imports Starlette only when routes are made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._endpoint import FeedbackEndpoint, mount_prefix

if TYPE_CHECKING:
    from starlette.routing import Route

__all__ = ["feedback_routes"]


def feedback_routes(endpoint: FeedbackEndpoint | None = None, *, path: str = "/feedback") -> list[Route]:
    """Routes serving ``endpoint`` (a new :class:`FeedbackEndpoint` by default) as ASGI at ``path``.

    ``path`` and ``path/`` take the feedback, ``path/form.js`` and ``path/form.css`` serve the
    embeddable form. Every method is routed to the endpoint, which answers 405 and ``OPTIONS``
    itself. With :class:`~sentry_feedback.asgi.SentryAsgiMiddleware` on the application the
    feedback is captured in the request's scope; without it the endpoint opens one.
    """
    from starlette.routing import Route

    if endpoint is None:
        endpoint = FeedbackEndpoint()
    elif not isinstance(endpoint, FeedbackEndpoint):
        raise TypeError(f"endpoint must be a FeedbackEndpoint, not {type(endpoint).__name__}")
    app = endpoint.asgi_app
    prefix = mount_prefix(path)
    return [
        Route(prefix or "/", app, name="sentry_feedback"),
        *([Route(prefix + "/", app, name="sentry_feedback_slash")] if prefix else []),
        Route(prefix + "/form.js", app, name="sentry_feedback_form_js"),
        Route(prefix + "/form.css", app, name="sentry_feedback_form_css"),
    ]
