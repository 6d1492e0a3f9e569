"""The embeddable form in headless Chromium: an error page with the form, sent with and without JavaScript.

The page is served with a strict Content-Security-Policy (``default-src 'self'``): the form's script and style
sheet come from the endpoint, nothing is inline, nothing comes from elsewhere.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback.endpoint import FeedbackEndpoint
from sentry_feedback.server import LocalReceiver
from sentry_feedback.wsgi import SentryWsgiMiddleware

from .conftest import Served, tiny_png

pytest.importorskip("selenium")

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from browser import conftest as browser_tests

# The browser tests' fixtures (headless Chromium, a page that fails on CSP violations) and their wait.
driver = browser_tests.driver
page = browser_tests.page
wait_for = browser_tests.wait_for

Init = Callable[..., sentry_feedback.Client]
CSP = "default-src 'self'; base-uri 'none'; form-action 'self'"


def shop(endpoint: FeedbackEndpoint) -> Callable[..., Iterable[bytes]]:
    """An application whose checkout fails; its error page carries the feedback form."""

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            raise ZeroDivisionError("the cart is empty")
        except ZeroDivisionError:
            error_id = sentry_feedback.capture_exception()
        document = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sorry</title></head><body>'
            f"<h1>Sorry, the checkout failed</h1><p>Error <code id='error-id'>{html.escape(error_id or '')}</code></p>"
            f"{endpoint.form_html('/feedback', associated_event_id=error_id)}</body></html>"
        )
        start_response(
            "500 Internal Server Error",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", CSP)],
        )
        return [document.encode()]

    return application


@pytest.fixture
def site(sentry_init: Init, serve: Callable[..., Served]) -> Served:
    sentry_init()
    endpoint = FeedbackEndpoint()
    return serve(SentryWsgiMiddleware(endpoint.mount_wsgi(shop(endpoint))))


@pytest.fixture
def screenshot(tmp_path: Path) -> Path:
    path = tmp_path / "checkout.png"
    path.write_bytes(tiny_png(64, 40))
    return path


def fill_in(browser: WebDriver, message: str, file: Path | None) -> None:
    browser.find_element(By.ID, "sentry-feedback-message").send_keys(message)
    browser.find_element(By.ID, "sentry-feedback-email").send_keys("jane@example.com")
    if file is not None:
        browser.find_element(By.ID, "sentry-feedback-attachments").send_keys(str(file))
    browser.find_element(By.CSS_SELECTOR, "form[data-sentry-feedback] button[type=submit]").click()


def test_sent_with_javascript(page: WebDriver, site: Served, screenshot: Path, sentry_receiver: LocalReceiver) -> None:
    page.get(f"{site.url}/checkout?step=pay")
    error_id = page.find_element(By.ID, "error-id").text
    assert page.find_element(By.CSS_SELECTOR, "label[for=sentry-feedback-message]").text
    wait_for(page, lambda d: d.find_element(By.NAME, "url").get_attribute("value"), "form.js did not run")
    fill_in(page, "The pay button does nothing", screenshot)
    status = page.find_element(By.ID, "sentry-feedback-status")
    feedback_id = wait_for(page, lambda d: status.get_attribute("data-feedback-id"), f"no id shown: {status.text!r}")
    assert page.current_url == f"{site.url}/checkout?step=pay"  # the page stayed
    assert feedback_id in status.text and "Thank you" in status.text
    assert page.find_element(By.ID, "sentry-feedback-message").get_attribute("value") == ""

    assert sentry_feedback.flush(10)
    (feedback,) = sentry_receiver.store.list_feedback()
    assert feedback.event_id == feedback_id
    assert feedback.associated_event_id == error_id
    assert feedback.data["contexts"]["feedback"]["url"] == f"{site.url}/checkout?step=pay"
    assert feedback.data["contexts"]["feedback"]["contact_email"] == "jane@example.com"
    (stored,) = sentry_receiver.store.list_attachments(feedback.event_id)
    assert (stored.filename, stored.content_type, stored.data) == ("checkout.png", "image/png", screenshot.read_bytes())


def test_a_refusal_is_shown_in_the_form(page: WebDriver, site: Served, tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"<html>not a picture</html>")
    page.get(f"{site.url}/checkout")
    wait_for(page, lambda d: d.find_element(By.NAME, "url").get_attribute("value"), "form.js did not run")
    fill_in(page, "Here is my screenshot", fake)
    status = page.find_element(By.ID, "sentry-feedback-status")
    wait_for(page, lambda d: status.get_attribute("data-state") == "error", "no error shown")
    assert "not a PNG, JPEG, GIF or WebP image" in status.text
    files = page.find_element(By.ID, "sentry-feedback-attachments")
    assert files.get_attribute("aria-invalid") == "true"
    assert page.switch_to.active_element == files


def test_sent_without_javascript(
    page: WebDriver, site: Served, screenshot: Path, sentry_receiver: LocalReceiver
) -> None:
    page.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        page.get(f"{site.url}/checkout")
        error_id = page.find_element(By.ID, "error-id").text
        fill_in(page, "Sent by the browser itself", screenshot)
        wait_for(page, lambda d: d.title == "Thank you", "the answer page did not come")
        text = page.find_element(By.TAG_NAME, "main").text
    finally:
        page.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    assert sentry_feedback.flush(10)
    (feedback,) = sentry_receiver.store.list_feedback()
    assert feedback.event_id in text
    assert feedback.associated_event_id == error_id
    assert feedback.data["contexts"]["feedback"]["url"] == f"{site.url}/checkout"  # from the Referer
    (stored,) = sentry_receiver.store.list_attachments(feedback.event_id)
    assert (stored.filename, stored.content_type) == ("checkout.png", "image/png")
