"""The Django project the gunicorn test serves (imported by the server, not by pytest).

Settings are configured here, in-process; the SDK is initialized with the DSN in
``WEB_TEST_DSN`` (the test's LocalReceiver).

* ``/together/<user>``: set the user, wait until a second request has set its own, capture a
  feedback, then fail; ``handler500`` answers with ``last_event_id()``;
* ``/flush``: wait until everything captured was sent.
"""

from __future__ import annotations

import os
import threading

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="integrations-django-gunicorn",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1"],
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
)

import sentry_feedback  # noqa: E402
from sentry_feedback.integrations.django import DjangoIntegration  # noqa: E402

sentry_feedback.init(
    dsn=os.environ["WEB_TEST_DSN"], send_default_pii=True, release="django-test@1", integrations=[DjangoIntegration()]
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

_together = threading.Barrier(2)


def together(request: HttpRequest, user: str) -> HttpResponse:
    sentry_feedback.set_user({"id": user})
    _together.wait(10)  # both requests have set their user before either captures
    sentry_feedback.capture_feedback(f"feedback from {user}")
    raise ZeroDivisionError(f"boom for {user}")


def server_error(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"error {sentry_feedback.last_event_id()}", status=500)


def flush(request: HttpRequest) -> HttpResponse:
    return HttpResponse("flushed" if sentry_feedback.flush(10) else "not flushed")


urlpatterns = [path("together/<str:user>", together), path("flush", flush)]
handler500 = server_error

application = get_wsgi_application()
