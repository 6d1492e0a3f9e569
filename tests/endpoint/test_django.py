"""The Django view and URL patterns, through Django's test clients (WSGI and ASGI)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable, Iterator

import pytest

import sentry_feedback
from sentry_feedback.server import LocalReceiver

from .conftest import attachments, delivered, tiny_png

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

Init = Callable[..., sentry_feedback.Client]
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


@pytest.fixture(autouse=True)
def _django() -> Iterator[None]:
    if not settings.configured:
        settings.configure(SECRET_KEY="endpoint-tests", USE_TZ=True, INSTALLED_APPS=[], DATABASES={})
        django.setup()
    with override_settings(
        ROOT_URLCONF="endpoint.django_urls",
        ALLOWED_HOSTS=["testserver"],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"],
        DEBUG=False,
    ):
        yield


def test_error_page_to_linked_feedback(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    browser = Client(enforce_csrf_checks=True)  # the endpoint is exempt: it checks the Origin instead
    page = browser.get("/checkout")
    assert page.status_code == 500
    text = page.content.decode()
    assert '<script src="/feedback/form.js" defer></script>' in text
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(text)}
    png = tiny_png()
    answer = browser.post(
        "/feedback/",
        {**fields, "message": "Checkout fails", "attachments": SimpleUploadedFile("shot.png", png, "image/png")},
        HTTP_ACCEPT="application/json",
        HTTP_ORIGIN="http://testserver",
    )
    assert answer.status_code == 202, answer.content
    (feedback,) = delivered(sentry_receiver)
    # The error, and Django's log record of the 500 page (the logging integration's event).
    (error,) = [event for event in sentry_receiver.store.list_events() if "ZeroDivisionError" in event.message]
    assert answer.json() == {"id": feedback.event_id}
    assert feedback.associated_event_id == error.event_id
    assert feedback.data["request"]["url"] == "http://testserver/feedback/"
    assert [(a.filename, a.content_type, a.data) for a in attachments(sentry_receiver, feedback)] == [
        ("shot.png", "image/png", png)
    ]


def test_static_files_methods_and_refusals(sentry_init: Init) -> None:
    sentry_init()
    browser = Client()
    script = browser.get("/feedback/form.js")
    assert script.status_code == 200 and script["Content-Type"] == "text/javascript; charset=utf-8"
    assert browser.get("/feedback/form.css").status_code == 200
    refused = browser.get("/feedback/")
    assert (refused.status_code, refused["Allow"]) == (405, "POST, OPTIONS")
    assert browser.options("/feedback/").status_code == 204
    cross = browser.post("/feedback/", {"message": "m"}, HTTP_ORIGIN="https://evil.example")
    assert cross.status_code == 403 and cross.json()["error"] == "forbidden_origin"
    bad = browser.post("/feedback/", b"[1]", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_json"


def test_plain_form_post_without_javascript(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    answer = Client().post("/feedback/", {"message": "No JavaScript"}, HTTP_ACCEPT="text/html")
    assert answer.status_code == 202
    assert answer["Content-Type"] == "text/html; charset=utf-8"
    (feedback,) = delivered(sentry_receiver)
    assert feedback.event_id in answer.content.decode()


def test_under_asgi(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()

    async def post() -> tuple[int, dict[str, str]]:
        response = await AsyncClient().post(
            "/feedback/", {"message": "from Django's ASGI handler"}, HTTP_ACCEPT="application/json"
        )
        return response.status_code, response.json()

    status, payload = asyncio.run(post())
    assert status == 202
    (feedback,) = delivered(sentry_receiver)
    assert payload == {"id": feedback.event_id}
    assert feedback.data["request"]["method"] == "POST"
