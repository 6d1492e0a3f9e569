"""The URL configuration of the Django tests: a failing checkout with an error page, and the feedback endpoint."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import include, path

import sentry_feedback
from sentry_feedback.endpoint import FeedbackEndpoint
from sentry_feedback.endpoint.django import feedback_urls

endpoint = FeedbackEndpoint()


def checkout(request: Any) -> HttpResponse:
    try:
        raise ZeroDivisionError("the cart is empty")
    except ZeroDivisionError:
        error_id = sentry_feedback.capture_exception()
    form = endpoint.form_html("/feedback/", associated_event_id=error_id)
    return HttpResponse(f"<h1>Sorry!</h1>{form}", status=500)


urlpatterns = [
    path("checkout", checkout),
    path("feedback/", include(feedback_urls(endpoint))),
]
