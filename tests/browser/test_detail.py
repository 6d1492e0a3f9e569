"""The detail pane: every attribute of a feedback, its screenshot and files, and the linked error's stack trace."""

from __future__ import annotations

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

import sentry_feedback
from sentry_feedback.server import LocalReceiver

from .conftest import (
    CHECKOUT_SOURCE,
    CONTEXT_LINE,
    browser_log,
    console_problems,
    open_detail,
    save_screenshot,
    sdk,
    send,
    send_with_error_and_attachments,
    sign_in,
    wait_for,
)

MESSAGE = "The pay button does nothing after I enter my card.\nI tried twice, then gave up."


def fields(page: WebDriver) -> dict[str, str]:
    """The detail's "Details" list, label -> text."""
    found: dict[str, str] = page.execute_script(
        "const out = {};"
        "for (const dt of document.querySelectorAll('#detail-fields dt')) out[dt.textContent] = "
        "dt.nextElementSibling.textContent;"
        "return out;"
    )
    return found


def seed(receiver: LocalReceiver) -> str:
    with sdk(receiver.dsn, environment="production", release="shop@2.4.1"):
        sentry_feedback.set_user({"id": "42", "email": "jane@example.com", "username": "jane"})
        sentry_feedback.set_tag("page", "checkout")
        sentry_feedback.set_tag("cart_items", "3")
        sentry_feedback.set_context("browser", {"name": "Firefox", "version": "127.0"})
        sentry_feedback.add_breadcrumb(category="ui.click", message="clicked 'Pay now'")
        send("Dark mode, please")
        return send_with_error_and_attachments(
            MESSAGE, email="jane@example.com", name="Jane Doe", url="https://shop.example.com/checkout?step=pay"
        )


def test_the_detail_shows_the_feedback_its_screenshot_and_the_linked_error(
    page: WebDriver, receiver: LocalReceiver
) -> None:
    feedback_id = seed(receiver)
    sign_in(page, receiver)

    detail = open_detail(page, "The pay button does nothing")

    assert page.find_element(By.ID, "detail-message").text == MESSAGE
    assert page.find_element(By.ID, "detail-title").text == "Feedback from Jane Doe"
    assert page.find_element(By.ID, "detail-status").text == "Unresolved"
    shown = fields(page)
    assert shown["Contact name"] == "Jane Doe"
    assert shown["Contact email"] == "jane@example.com"
    assert shown["Release"] == "shop@2.4.1"
    assert shown["Environment"] == "production"
    assert shown["Browser"] == "Firefox 127.0"
    assert "id 42" in shown["User"] and "username jane" in shown["User"]
    assert shown["Feedback id"] == feedback_id
    assert len(shown["Trace id"]) == 32
    link = page.find_element(By.CSS_SELECTOR, "#detail-fields a")
    assert link.text == "https://shop.example.com/checkout?step=pay"
    assert link.get_attribute("rel") == "noopener noreferrer"
    tags = page.find_element(By.ID, "detail-tags").text
    assert "page" in tags and "checkout" in tags and "cart_items" in tags

    # The screenshot inline, decoded by the browser; the log file as a download.
    image = page.find_element(By.CSS_SELECTOR, "#detail-attachments img")
    wait_for(page, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    assert page.execute_script("return arguments[0].naturalWidth", image) == 64
    assert image.get_attribute("alt") == "screenshot.png"
    download = page.find_element(By.CSS_SELECTOR, "#detail-attachments .attachment-file a")
    assert download.text == "app.log"
    assert download.get_attribute("download") == "app.log"
    href = download.get_attribute("href") or ""
    assert href.startswith(f"{receiver.api_url}/projects/local/default/user-feedback/{feedback_id}/attachments/")

    # The linked error: its type and message, then the frames newest first with their source.
    error = page.find_element(By.ID, "detail-error")
    assert error.find_element(By.CSS_SELECTOR, ".error-title").text == (
        "PaymentDeclined: card declined while charging 42.5 EUR to 0002"
    )
    frames = error.find_elements(By.CSS_SELECTOR, ".frame")
    functions = [frame.find_element(By.CSS_SELECTOR, ".frame-function").text for frame in frames]
    assert functions[:3] == ["charge_card", "checkout", "capture_checkout_error"]
    newest = frames[0]
    where = newest.find_element(By.CSS_SELECTOR, ".frame-file").text
    assert where.startswith("shop/checkout.py:")
    assert newest.find_element(By.CSS_SELECTOR, ".source-line.current .code").text.strip() == CONTEXT_LINE
    line = int(newest.find_element(By.CSS_SELECTOR, ".source-line.current .lineno").text)
    assert where == f"shop/checkout.py:{line}" and CHECKOUT_SOURCE.splitlines()[line - 1].strip() == CONTEXT_LINE
    context = newest.find_element(By.CSS_SELECTOR, ".source").text
    assert "last_digits = card_number[-4:]" in context  # pre_context
    assert "def checkout(cart_total, card_number" in context  # post_context
    newest.find_element(By.CSS_SELECTOR, ".vars summary").click()
    variables = newest.find_element(By.CSS_SELECTOR, ".vars").text
    assert "amount" in variables and "42.5" in variables and "acme-pay" in variables

    assert "clicked 'Pay now'" in (error.get_attribute("textContent") or "")
    assert detail.is_displayed()

    # For the docs: the detail with the screenshot and the stack trace in view.
    page.execute_script("document.getElementById('detail-attachments-section').scrollIntoView()")
    save_screenshot(page, "inbox-detail.png", 1280, 1000)
    assert console_problems(page) == []


def test_a_feedback_without_error_or_attachments_shows_no_empty_sections(
    page: WebDriver, receiver: LocalReceiver
) -> None:
    seed(receiver)
    sign_in(page, receiver)

    open_detail(page, "Dark mode, please")

    assert not page.find_element(By.ID, "detail-error-section").is_displayed()
    assert not page.find_element(By.ID, "detail-attachments-section").is_displayed()
    assert "Contact email" not in fields(page)


def test_the_page_breaks_no_csp_rule(page: WebDriver, receiver: LocalReceiver) -> None:
    """The page's CSP forbids inline script and style: the console shows no violation after a full tour."""
    seed(receiver)
    sign_in(page, receiver)
    open_detail(page, "The pay button does nothing")
    page.find_element(By.ID, "help-button").click()
    wait_for(page, lambda d: d.find_element(By.ID, "help-dialog").get_attribute("open") is not None)
    page.find_element(By.ID, "help-close").click()
    page.find_element(By.ID, "detail-delete").click()
    wait_for(page, lambda d: d.find_element(By.ID, "confirm-dialog").get_attribute("open") is not None)
    page.find_element(By.ID, "confirm-cancel").click()

    logs = browser_log(page)
    violations = [entry for entry in logs if "Content Security Policy" in str(entry.get("message"))]
    assert violations == []
    assert [entry for entry in logs if entry.get("level") == "SEVERE"] == []
