"""The feedback endpoint as a Django view and URL patterns.

>>> from django.urls import include, path
>>> from sentry_feedback.endpoint.django import feedback_urls
>>> urlpatterns = [path("feedback/", include(feedback_urls()))]   # POST /feedback/, GET /feedback/form.js

This module imports Django only when a view is made. Works under WSGI and ASGI.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .._request_data import from_wsgi_environ
from ._endpoint import FeedbackEndpoint, head_from_environ

__all__ = ["feedback_urls", "feedback_view"]


def feedback_view(endpoint: FeedbackEndpoint | None = None) -> Callable[..., Any]:
    """A Django view serving ``endpoint`` (a new :class:`FeedbackEndpoint` by default).

    Route the feedback URL and its ``form.js`` and ``form.css`` to it (or use
    :func:`feedback_urls`). The view is exempt from Django's CSRF check: the endpoint takes
    no authority from cookies, and checks the ``Origin`` of browser posts instead (see the
    security notes of the documentation). It reads the body with ``request.read()``, so
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not apply; the endpoint's own limits do.
    """
    http = importlib.import_module("django.http")
    if endpoint is None:
        endpoint = FeedbackEndpoint()
    elif not isinstance(endpoint, FeedbackEndpoint):
        raise TypeError(f"endpoint must be a FeedbackEndpoint, not {type(endpoint).__name__}")
    server = endpoint

    def sentry_feedback_endpoint(request: Any, *args: object, **kwargs: object) -> Any:
        meta = request.META
        # Under ASGI Django has received the whole body already; under WSGI only Content-Length frames it.
        terminated = type(request).__name__ == "ASGIRequest"
        with server._request_scope(lambda options: from_wsgi_environ(meta, options=options)):
            response = server.handle(head_from_environ(meta), request.read, terminated=terminated)
        answer = http.HttpResponse(response.body, status=response.status)
        for name, value in response.headers:
            answer[name] = value
        return answer

    sentry_feedback_endpoint.csrf_exempt = True  # type: ignore[attr-defined]
    return sentry_feedback_endpoint


def feedback_urls(endpoint: FeedbackEndpoint | None = None, *, name: str = "sentry-feedback") -> list[Any]:
    """URL patterns for ``include()``: ``""`` (the feedback), ``"form.js"`` and ``"form.css"``.

    >>> urlpatterns = [path("feedback/", include(feedback_urls()))]

    The feedback URL is then ``/feedback/`` (with the slash: Django cannot redirect a POST).
    ``name`` names the feedback URL (``reverse("sentry-feedback")``).
    """
    urls = importlib.import_module("django.urls")
    view = feedback_view(endpoint)
    return [
        urls.path("", view, name=name),
        urls.path("form.js", view, name=f"{name}-form-js"),
        urls.path("form.css", view, name=f"{name}-form-css"),
    ]
