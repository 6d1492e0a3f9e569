"""Triage from the page: resolve, unresolve and delete, one at a time and for a selection; keyboard shortcuts;
a read-only token. Every change is checked through the REST API."""

from __future__ import annotations

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from sentry_feedback.server import LocalReceiver

from .conftest import (
    READ_TOKEN,
    Api,
    confirm_dialog,
    open_detail,
    row,
    sdk,
    selected_id,
    send,
    sign_in,
    wait_for,
    wait_for_messages,
)

MESSAGES = ["Third: dark mode, please", "Second: the search is slow", "First: the pay button does nothing"]


def seed(receiver: LocalReceiver) -> list[str]:
    """Three feedbacks; their ids newest first (the list's order)."""
    with sdk(receiver.dsn, environment="production"):
        ids = [send(message) for message in reversed(MESSAGES)]
    return ids[::-1]


def press(page: WebDriver, *keys: str) -> None:
    """Type keys to whatever has the focus (the page itself when nothing has)."""
    ActionChains(page).send_keys(*keys).perform()


def row_status(page: WebDriver, message: str) -> str:
    return row(page, message).find_element(By.CSS_SELECTOR, ".badge").text


def test_resolve_and_unresolve_persist(page: WebDriver, receiver: LocalReceiver, api: Api) -> None:
    ids = seed(receiver)
    sign_in(page, receiver)
    open_detail(page, "Second")
    button = page.find_element(By.ID, "detail-resolve")
    assert button.text == "Resolve"

    button.click()

    wait_for(page, lambda d: button.text == "Unresolve" and row_status(d, "Second") == "Resolved")
    assert page.find_element(By.ID, "detail-status").text == "Resolved"
    assert [api.status(i) for i in ids] == ["unresolved", "resolved", "unresolved"]
    assert page.find_element(By.ID, "live").get_attribute("textContent") == "Resolved 1 feedback."

    button.click()

    wait_for(page, lambda d: button.text == "Resolve" and row_status(d, "Second") == "Unresolved")
    assert api.status(ids[1]) == "unresolved"


def test_delete_asks_in_the_page_first_then_persists(page: WebDriver, receiver: LocalReceiver, api: Api) -> None:
    ids = seed(receiver)
    sign_in(page, receiver)
    open_detail(page, "Second")

    page.find_element(By.ID, "detail-delete").click()
    dialog = confirm_dialog(page)
    assert "Second: the search is slow" in dialog.text
    page.find_element(By.ID, "confirm-cancel").click()  # changed my mind
    wait_for(page, lambda d: dialog.get_attribute("open") is None)
    assert api.status(ids[1]) == "unresolved"

    page.find_element(By.ID, "detail-delete").click()
    confirm_dialog(page)
    page.find_element(By.ID, "confirm-ok").click()

    wait_for_messages(page, [MESSAGES[0], MESSAGES[2]])
    assert api.item(ids[1]) is None
    assert api.status(ids[0]) == api.status(ids[2]) == "unresolved"
    # The next feedback is selected in its place.
    wait_for(page, lambda d: selected_id(d) == ids[2])
    assert page.find_element(By.ID, "detail-message").text == MESSAGES[2]


def test_bulk_actions_on_a_selection(page: WebDriver, receiver: LocalReceiver, api: Api) -> None:
    ids = seed(receiver)
    sign_in(page, receiver)
    wait_for_messages(page, MESSAGES)
    bulk_resolve = page.find_element(By.ID, "bulk-resolve")
    assert not bulk_resolve.is_enabled()

    row(page, "Third").find_element(By.CSS_SELECTOR, ".row-check").click()
    row(page, "First").find_element(By.CSS_SELECTOR, ".row-check").click()
    assert page.find_element(By.ID, "selection-count").text == "2 selected"
    bulk_resolve.click()

    wait_for(
        page, lambda d: [row_status(d, m.split(":")[0]) for m in MESSAGES] == ["Resolved", "Unresolved", "Resolved"]
    )
    assert [api.status(i) for i in ids] == ["resolved", "unresolved", "resolved"]

    page.find_element(By.ID, "bulk-unresolve").click()
    wait_for(page, lambda d: [api.status(i) for i in ids] == ["unresolved"] * 3)

    page.find_element(By.ID, "select-all").click()
    assert page.find_element(By.ID, "selection-count").text == "3 selected"
    row(page, "Second").find_element(By.CSS_SELECTOR, ".row-check").click()  # all but this one
    page.find_element(By.ID, "bulk-delete").click()
    dialog = confirm_dialog(page)
    assert "Delete 2 feedback" in dialog.text
    page.find_element(By.ID, "confirm-ok").click()

    wait_for_messages(page, [MESSAGES[1]])
    assert [api.item(i) is None for i in ids] == [True, False, True]
    assert page.find_element(By.ID, "selection-count").text == "0 selected"


def test_keyboard_shortcuts(page: WebDriver, receiver: LocalReceiver, api: Api) -> None:
    ids = seed(receiver)
    sign_in(page, receiver)
    wait_for_messages(page, MESSAGES)

    press(page, "j")  # nothing selected yet: the first
    wait_for(page, lambda d: selected_id(d) == ids[0])
    press(page, "j", "j")
    wait_for(page, lambda d: selected_id(d) == ids[2])
    press(page, "j")  # the last stays selected
    assert selected_id(page) == ids[2]
    press(page, "k")
    wait_for(page, lambda d: selected_id(d) == ids[1])
    wait_for(page, lambda d: d.find_element(By.ID, "detail-message").text == MESSAGES[1])
    assert page.switch_to.active_element.get_attribute("aria-current") == "true"  # the focus follows

    press(page, "r")
    wait_for(page, lambda d: row_status(d, "Second") == "Resolved")
    assert api.status(ids[1]) == "resolved"
    press(page, "r")  # r again unresolves
    wait_for(page, lambda d: row_status(d, "Second") == "Unresolved")
    assert api.status(ids[1]) == "unresolved"

    press(page, "/")
    search = page.find_element(By.ID, "search")
    assert page.switch_to.active_element == search
    press(page, "jk r")  # typed into the search box, not shortcuts
    assert search.get_attribute("value") == "jk r"
    assert selected_id(page) == ids[1]
    assert api.status(ids[1]) == "unresolved"
    press(page, Keys.ESCAPE)
    assert page.switch_to.active_element != search
    assert search.get_attribute("value") == "jk r"  # Escape leaves the box, it does not clear it
    press(page, "k")
    wait_for(page, lambda d: selected_id(d) == ids[0])

    press(page, Keys.ARROW_DOWN)  # the list itself: arrows move too
    wait_for(page, lambda d: selected_id(d) == ids[1])
    press(page, "x")  # ticks the selected one for a bulk action
    assert page.find_element(By.ID, "selection-count").text == "1 selected"
    assert row(page, "Second").find_element(By.CSS_SELECTOR, ".row-check").is_selected()

    press(page, "?")
    help_dialog = page.find_element(By.ID, "help-dialog")
    wait_for(page, lambda d: help_dialog.get_attribute("open") is not None)
    assert "Resolve the selected feedback" in help_dialog.text
    press(page, Keys.ESCAPE)
    wait_for(page, lambda d: help_dialog.get_attribute("open") is None)


def test_a_read_only_token_cannot_change_anything_and_the_page_says_so(
    page: WebDriver, receiver: LocalReceiver, api: Api
) -> None:
    ids = seed(receiver)
    sign_in(page, receiver, token=READ_TOKEN)
    open_detail(page, "Second")

    page.find_element(By.ID, "detail-resolve").click()

    error = page.find_element(By.ID, "error")
    wait_for(page, lambda d: error.is_displayed())
    assert "this token may only read feedback" in error.text
    assert api.status(ids[1]) == "unresolved"
    assert row_status(page, "Second") == "Unresolved"
    page.find_element(By.ID, "error-close").click()
    assert not error.is_displayed()

    page.find_element(By.ID, "detail-delete").click()
    confirm_dialog(page)
    page.find_element(By.ID, "confirm-ok").click()
    wait_for(page, lambda d: error.is_displayed())
    assert "Deleting failed: this token may only read feedback" in error.text
    assert api.item(ids[1]) is not None
    assert len(page.find_elements(By.CSS_SELECTOR, "#list .row")) == 3
