"""What feedback holds is shown as text and never runs; signing in and out; the session's cookies guard the API."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from sentry_feedback import Attachment
from sentry_feedback.server import LocalReceiver

from .conftest import (
    READ_TOKEN,
    capture_checkout_error,
    open_detail,
    post_envelope,
    sdk,
    send,
    sign_in,
    tiny_png,
    trace_rows,
    wait_for,
    wait_for_list,
    wait_for_messages,
    wait_for_trace,
)

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
MESSAGE = f"{IMG} and {SCRIPT} in a feedback"
NAME = 'Mallory "><svg onload=alert(3)>'
EMAIL = "mallory+<img src=x onerror=alert(4)>@example.com"
URL = "javascript:alert(5)"
HTTP_URL = 'https://example.com/"><img src=x onerror=alert(6)>'
TAG = "<img src=x onerror=alert(7)>"
FILE_NAME = "<img src=x onerror=alert(8)>.png"
ERROR_VALUE = "<img src=x onerror=alert(9)>"
SPAN_DESCRIPTION = "<img src=x onerror=alert(10)>"
TRANSACTION_NAME = "<script>alert(11)</script> /checkout"
SPAN_OP = '"><svg onload=alert(12)>'
SPAN_STATUS = "<b onmouseover=alert(13)>bad</b>"

FETCH = """
const [method, path, done] = arguments;
fetch(path, {method, credentials: "same-origin", headers: {"Content-Type": "application/json"},
             body: method === "GET" ? undefined : JSON.stringify({data: {status: "resolved"}})})
  .then(response => done(response.status), error => done(String(error)));
"""


def no_alert(page: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert  # noqa: B018 - the property raises when no alert is open


def injected(page: WebDriver) -> list[str]:
    """Elements only a payload could have made."""
    found: list[str] = page.execute_script(
        "return Array.from(document.querySelectorAll(\"img[src='x'], svg[onload], [onerror], [onload], [onmouseover],"
        " a[href^='javascript'], #detail script, #list script, #detail-trace b\"), e => e.outerHTML)"
    )
    return found


def fetch(page: WebDriver, method: str, path: str) -> Any:
    return page.execute_async_script(FETCH, method, path)


def test_payloads_in_feedback_are_shown_as_text_and_never_run(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn, environment="production"):
        error_id = capture_checkout_error(ERROR_VALUE)
        send(
            MESSAGE,
            name=NAME,
            email=EMAIL,
            url=URL,
            tags={"payload": TAG},
            associated_event_id=error_id,
            attachments=[Attachment(tiny_png(), filename=FILE_NAME, content_type="image/png")],
        )
        send("A link with a payload", url=HTTP_URL)
    sign_in(page, receiver)
    wait_for_messages(page, ["A link with a payload", MESSAGE])
    no_alert(page)

    open_detail(page, IMG)
    wait_for(page, lambda d: d.execute_script("return document.querySelector('#detail-attachments img')?.complete"))

    no_alert(page)
    assert injected(page) == []
    assert page.find_element(By.ID, "detail-message").text == MESSAGE
    assert page.find_element(By.ID, "detail-title").text == f"Feedback from {NAME}"
    detail = page.find_element(By.ID, "detail").text
    for payload in (EMAIL, URL, TAG, FILE_NAME):
        assert payload in detail, payload
    assert page.find_element(By.CSS_SELECTOR, "#detail-error .error-title").text.startswith(
        f"PaymentDeclined: {ERROR_VALUE}"
    )
    assert page.find_elements(By.CSS_SELECTOR, "#detail-fields a") == []  # javascript: is no link
    assert page.execute_script("return document.scripts.length") == 1
    row_contact = page.find_element(By.CSS_SELECTOR, "#list .row.selected .row-contact").text
    assert row_contact == f"{NAME} <{EMAIL}>"

    open_detail(page, "A link with a payload")
    link = page.find_element(By.CSS_SELECTOR, "#detail-fields a")
    assert link.text == HTTP_URL
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert (link.get_attribute("href") or "").startswith("https://example.com/")
    no_alert(page)
    assert injected(page) == []


def test_payloads_in_a_trace_are_shown_as_text_and_never_run(page: WebDriver, receiver: LocalReceiver) -> None:
    trace_id, root, evil = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "e" * 16
    now = time.time()
    spans = [
        {"span_id": evil, "parent_span_id": root, "op": SPAN_OP, "description": SPAN_DESCRIPTION,
         "status": SPAN_STATUS, "start_timestamp": now - 0.5, "timestamp": now - 0.25},
    ]  # fmt: skip
    event = {
        "type": "transaction",
        "transaction": TRANSACTION_NAME,
        "start_timestamp": now - 1,
        "timestamp": now,
        "contexts": {"trace": {"trace_id": trace_id, "span_id": root, "op": IMG}},
        "spans": spans,
    }
    post_envelope(receiver, ("transaction", event))
    feedback = {
        "timestamp": now - 0.3,
        "contexts": {
            "feedback": {"message": "A trace with payloads"},
            "trace": {"trace_id": trace_id, "span_id": evil},
        },
    }
    post_envelope(receiver, ("feedback", feedback), event_id="f" * 32)
    sign_in(page, receiver)
    wait_for_messages(page, ["A trace with payloads"])

    open_detail(page, "A trace with payloads")
    assert wait_for_trace(page)

    no_alert(page)
    assert injected(page) == []
    root_row, span_row, feedback_row = trace_rows(page)
    assert (root_row["op"], root_row["name"]) == (IMG, TRANSACTION_NAME)
    assert (span_row["op"], span_row["name"], span_row["status"]) == (SPAN_OP, SPAN_DESCRIPTION, SPAN_STATUS)
    assert span_row["current"] and span_row["span_id"] == evil and feedback_row["kind"] == "feedback"
    assert page.execute_script("return document.scripts.length") == 1

    # The page reads the trace with its session, as the rest: without one, the route refuses.
    path = f"/api/0/projects/{receiver.org}/{receiver.project_slug}/user-feedback/{'f' * 32}/trace/"
    assert fetch(page, "GET", path) == 200
    page.delete_all_cookies()
    assert fetch(page, "GET", path) == 401
    assert fetch(page, "GET", f"/api/0/organizations/{receiver.org}/traces/{trace_id}/") == 401


def test_signed_out_the_page_asks_for_a_token_and_the_api_refuses(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        send("Secret feedback")
    page.get(receiver.url + "/")

    form = page.find_element(By.ID, "sign-in-form")
    assert form.get_attribute("method") == "post"
    assert form.get_attribute("action") == receiver.url + "/inbox/sign-in"
    assert page.find_element(By.CSS_SELECTOR, "label[for=token]").text == "API token"
    assert not page.find_element(By.ID, "sign-in-failed").is_displayed()
    assert "Secret feedback" not in page.find_element(By.TAG_NAME, "body").text
    assert fetch(page, "GET", "/api/0/organizations/") == 401
    assert fetch(page, "GET", f"/api/0/organizations/{receiver.org}/user-feedback/") == 401


def test_the_sign_in_form(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        send("The pay button does nothing")
        send("Dark mode, please")
    page.get(receiver.url + "/?query=pay")  # a bookmarked view, signed out

    page.find_element(By.ID, "token").send_keys("not-the-token")
    page.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()

    # Found again on each try: an element of the page before the post goes stale once the new one loads.
    wait_for(
        page, lambda d: "sign-in=failed" in d.current_url and d.find_element(By.ID, "sign-in-failed").is_displayed()
    )
    assert "The token was not accepted" in page.find_element(By.ID, "sign-in-failed").text

    page.get(receiver.url + "/?query=pay")
    page.find_element(By.ID, "token").send_keys(receiver.api_token)
    page.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()

    wait_for(page, lambda d: d.find_elements(By.ID, "list"))
    wait_for_list(page)
    assert page.current_url == receiver.url + "/?query=pay"  # back to the bookmarked view
    wait_for_messages(page, ["The pay button does nothing"])


def test_a_token_handed_over_in_the_url_leaves_the_url(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        send("The pay button does nothing")
        send("Dark mode, please")

    page.get(f"{receiver.url}/?token={urllib.parse.quote(receiver.api_token)}&query=dark")

    wait_for_list(page)
    assert page.current_url == receiver.url + "/?query=dark"
    assert receiver.api_token not in page.execute_script("return location.href + document.referrer")
    wait_for_messages(page, ["Dark mode, please"])
    assert page.find_element(By.ID, "search").get_attribute("value") == "dark"
    # The session cookie is HttpOnly: scripts see the CSRF cookie only.
    cookies: str = page.execute_script("return document.cookie")
    assert "sf_csrf=" in cookies and "sf_session" not in cookies and receiver.api_token not in cookies

    # A refused token while signed in: the session stays, and the page says the link's token was refused.
    page.get(f"{receiver.url}/?token=wrong-token-0000")
    wait_for_list(page)
    assert "was not accepted" in page.find_element(By.ID, "error").text
    assert page.current_url == receiver.url + "/"

    page.execute_cdp_cmd("Network.clearBrowserCookies", {})
    page.get(f"{receiver.url}/?token=wrong-token-0000")
    wait_for(page, lambda d: d.find_element(By.ID, "sign-in-failed").is_displayed())
    assert page.current_url == receiver.url + "/?sign-in=failed"


def test_sign_out_and_a_session_that_ends(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        send("The pay button does nothing")
    sign_in(page, receiver)
    wait_for_messages(page, ["The pay button does nothing"])

    # The session ends under the page (cookies gone): its next call says so.
    page.delete_all_cookies()
    page.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()  # reloads the list
    banner = page.find_element(By.ID, "signed-out")
    wait_for(page, lambda d: banner.is_displayed())
    assert banner.find_element(By.TAG_NAME, "a").get_attribute("href") == receiver.url + "/"

    sign_in(page, receiver)
    page.find_element(By.CSS_SELECTOR, "form.sign-out button").click()
    wait_for(page, lambda d: d.find_elements(By.ID, "sign-in-form"))
    assert fetch(page, "GET", "/api/0/organizations/") == 401


def test_a_read_only_session_reads_but_the_api_refuses_changes(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        feedback_id = send("The pay button does nothing")
    sign_in(page, receiver, token=READ_TOKEN)
    wait_for_messages(page, ["The pay button does nothing"])
    path = f"/api/0/projects/{receiver.org}/{receiver.project_slug}/user-feedback/{feedback_id}/"
    assert fetch(page, "GET", path) == 200
    assert fetch(page, "PATCH", path) == 403  # no CSRF header, and a read-only token anyway


def test_changes_without_the_csrf_header_are_refused(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        feedback_id = send("The pay button does nothing")
    sign_in(page, receiver)
    path = f"/api/0/projects/{receiver.org}/{receiver.project_slug}/user-feedback/{feedback_id}/"
    assert fetch(page, "PATCH", path) == 403
    assert fetch(page, "GET", path) == 200
