"""The inbox's list: order, search and filters (in the URL, kept on reload), paging, live arrivals, the empty inbox."""

from __future__ import annotations

import time
import urllib.parse

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from sentry_feedback.server import LocalReceiver, Project, ServerConfig

from .conftest import (
    Api,
    messages,
    save_screenshot,
    sdk,
    search_for,
    selected_id,
    send,
    send_with_error_and_attachments,
    sign_in,
    wait_for,
    wait_for_list,
    wait_for_messages,
)


def url_state(driver: WebDriver) -> dict[str, str]:
    """The page's state as its address bar holds it."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(driver.current_url).query))


def test_the_list_shows_feedback_newest_first(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn, environment="production", release="shop@2.4.1"):
        send("The search is slow on mobile", email="bob@example.com")
        send_with_error_and_attachments(email="jane@example.com", name="Jane Doe")
        send("Dark mode, please", name="Ana")

    sign_in(page, receiver)

    wait_for_messages(
        page,
        ["Dark mode, please", "The pay button does nothing after I enter my card.", "The search is slow on mobile"],
    )
    rows = page.find_elements(By.CSS_SELECTOR, "#list .row")
    assert rows[0].find_element(By.CSS_SELECTOR, ".row-contact").text == "Ana"
    assert rows[1].find_element(By.CSS_SELECTOR, ".row-contact").text == "Jane Doe <jane@example.com>"
    assert rows[2].find_element(By.CSS_SELECTOR, ".row-contact").text == "bob@example.com"
    meta = rows[1].find_element(By.CSS_SELECTOR, ".row-meta").text
    assert "Unresolved" in meta and "default" in meta and "production" in meta
    assert rows[1].find_element(By.CSS_SELECTOR, ".row-time").get_attribute("datetime")
    # The paperclip only on the feedback with attachments.
    assert [len(r.find_elements(By.CSS_SELECTOR, ".clip svg")) for r in rows] == [0, 1, 0]
    assert page.find_element(By.ID, "hits").text == "3 feedback"
    assert page.find_element(By.ID, "detail-placeholder").is_displayed()

    rows[1].find_element(By.CSS_SELECTOR, ".row-open").click()
    wait_for(page, lambda d: d.find_element(By.ID, "detail-error").text.startswith("PaymentDeclined"))
    save_screenshot(page, "inbox.png")


def test_search_and_status_narrow_the_list_and_live_in_the_url(
    page: WebDriver, receiver: LocalReceiver, api: Api
) -> None:
    with sdk(receiver.dsn, environment="production"):
        send("The pay button does nothing")
        paid_twice = send("Payment failed twice")
        send("Dark mode, please")
    api.set_status(paid_twice, "resolved")
    sign_in(page, receiver)
    wait_for_messages(page, ["Dark mode, please", "Payment failed twice", "The pay button does nothing"])

    search_for(page, "pay")
    wait_for_messages(page, ["Payment failed twice", "The pay button does nothing"])
    assert url_state(page) == {"query": "pay"}

    Select(page.find_element(By.ID, "filter-status")).select_by_value("unresolved")
    wait_for_messages(page, ["The pay button does nothing"])
    assert url_state(page) == {"query": "pay", "status": "unresolved"}

    page.refresh()  # a bookmark: the same view after a reload
    wait_for_list(page)
    wait_for_messages(page, ["The pay button does nothing"])
    assert page.find_element(By.ID, "search").get_attribute("value") == "pay"
    assert (
        Select(page.find_element(By.ID, "filter-status")).first_selected_option.get_attribute("value") == "unresolved"
    )

    page.back()  # the view before the status filter
    wait_for_messages(page, ["Payment failed twice", "The pay button does nothing"])
    assert url_state(page) == {"query": "pay"}
    assert page.find_element(By.ID, "filter-status").get_attribute("value") == ""

    search_for(page, "status:resolved")  # the API's own syntax
    wait_for_messages(page, ["Payment failed twice"])


def test_a_search_the_server_refuses_shows_its_detail(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        send("The pay button does nothing")
    sign_in(page, receiver)
    wait_for_messages(page, ["The pay button does nothing"])

    search_for(page, "pay OR card")

    error = page.find_element(By.ID, "search-error")
    wait_for(page, lambda d: error.is_displayed())
    assert "Invalid query at position 4" in error.text
    assert page.find_element(By.ID, "search").get_attribute("aria-invalid") == "true"
    assert messages(page) == []

    search_for(page, "pay")
    wait_for_messages(page, ["The pay button does nothing"])
    assert not error.is_displayed()


def test_project_environment_period_and_sort_filters(page: WebDriver) -> None:
    config = ServerConfig(org="local", projects=(Project("web", "1", "webkey"), Project("mobile", "2", "appkey")))
    with LocalReceiver(config=config) as receiver:
        api = Api(receiver)
        mobile_dsn = receiver.dsn.replace("webkey@", "appkey@").rsplit("/", 1)[0] + "/2"
        with sdk(receiver.dsn, environment="production"):
            send("Web: checkout is slow")
        with sdk(mobile_dsn, environment="staging"):
            send("Mobile: the app crashes on start")
        with sdk(receiver.dsn, environment="staging"):
            send("Web: the footer overlaps")
        api.create({"message": "Web: an old complaint", "project": "web", "timestamp": time.time() - 10 * 86400})
        sign_in(page, receiver)
        wait_for_messages(
            page, ["Web: the footer overlaps", "Mobile: the app crashes on start", "Web: checkout is slow"]
        )

        projects = Select(page.find_element(By.ID, "filter-project"))
        wait_for(page, lambda d: len(projects.options) == 3)
        assert [o.text for o in projects.options] == ["All projects", "web", "mobile"]
        projects.select_by_value("mobile")
        wait_for_messages(page, ["Mobile: the app crashes on start"])
        assert url_state(page) == {"project": "mobile"}
        projects.select_by_value("")

        environments = Select(page.find_element(By.ID, "filter-environment"))
        assert sorted(o.get_attribute("value") or "" for o in environments.options) == ["", "production", "staging"]
        environments.select_by_value("staging")
        wait_for_messages(page, ["Web: the footer overlaps", "Mobile: the app crashes on start"])
        assert url_state(page) == {"environment": "staging"}
        environments.select_by_value("")

        Select(page.find_element(By.ID, "filter-period")).select_by_value("14d")
        wait_for_messages(
            page,
            [
                "Web: the footer overlaps",
                "Mobile: the app crashes on start",
                "Web: checkout is slow",
                "Web: an old complaint",
            ],
        )
        Select(page.find_element(By.ID, "filter-sort")).select_by_value("timestamp")
        wait_for_messages(
            page,
            [
                "Web: an old complaint",
                "Web: checkout is slow",
                "Mobile: the app crashes on start",
                "Web: the footer overlaps",
            ],
        )
        assert url_state(page) == {"statsPeriod": "14d", "sort": "timestamp"}
        Select(page.find_element(By.ID, "filter-sort")).select_by_value("-projectId")
        wait_for(page, lambda d: messages(d)[0] == "Mobile: the app crashes on start")

        page.refresh()
        wait_for_list(page)
        wait_for(page, lambda d: messages(d)[0] == "Mobile: the app crashes on start")
        assert page.find_element(By.ID, "filter-period").get_attribute("value") == "14d"
        assert page.find_element(By.ID, "filter-sort").get_attribute("value") == "-projectId"


def test_paging_follows_the_link_cursors(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        for number in range(5):
            send(f"Feedback number {number}")
    sign_in(page, receiver, "per_page=2")
    wait_for_messages(page, ["Feedback number 4", "Feedback number 3"])
    previous, next_ = page.find_element(By.ID, "prev-page"), page.find_element(By.ID, "next-page")
    assert not previous.is_enabled() and next_.is_enabled()

    next_.click()
    wait_for_messages(page, ["Feedback number 2", "Feedback number 1"])
    assert "cursor" in url_state(page)
    next_.click()
    wait_for_messages(page, ["Feedback number 0"])
    assert not next_.is_enabled() and previous.is_enabled()

    page.refresh()  # a page reached by a cursor is bookmarkable too
    wait_for_list(page)
    wait_for_messages(page, ["Feedback number 0"])

    page.find_element(By.ID, "prev-page").click()
    wait_for_messages(page, ["Feedback number 2", "Feedback number 1"])
    page.find_element(By.ID, "prev-page").click()
    wait_for_messages(page, ["Feedback number 4", "Feedback number 3"])
    wait_for(page, lambda d: "cursor" not in url_state(d))  # back on the first page: it polls again
    assert not page.find_element(By.ID, "prev-page").is_enabled()


def test_new_feedback_appears_without_a_reload_and_keeps_the_selection(
    page: WebDriver, receiver: LocalReceiver
) -> None:
    with sdk(receiver.dsn):
        first = send("The first feedback")
        sign_in(page, receiver)
        wait_for_messages(page, ["The first feedback"])
        page.find_element(By.CSS_SELECTOR, "#list .row-open").click()
        wait_for(page, lambda d: selected_id(d) == first)
        assert url_state(page) == {"id": first}

        send("A feedback sent while the page is open")

        wait_for_messages(page, ["A feedback sent while the page is open", "The first feedback"])
    assert selected_id(page) == first
    assert page.find_element(By.ID, "detail-message").text == "The first feedback"
    wait_for(page, lambda d: d.find_element(By.ID, "live").get_attribute("textContent") == "1 new feedback arrived.")
    assert page.find_element(By.ID, "hits").text == "2 feedback"


def test_the_selection_is_in_the_url(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        wanted = send("Open me from a link")
        for number in range(3):
            send(f"Newer feedback {number}")
    sign_in(page, receiver, f"id={wanted}&per_page=2")  # not on the first page: fetched on its own
    wait_for(page, lambda d: d.find_element(By.ID, "detail-message").text == "Open me from a link")
    assert selected_id(page) is None


def test_an_empty_inbox_explains_how_to_send_the_first_feedback(page: WebDriver, receiver: LocalReceiver) -> None:
    sign_in(page, receiver)

    empty = page.find_element(By.ID, "empty")
    wait_for(page, lambda d: empty.is_displayed() and d.find_element(By.ID, "empty-dsn").text == receiver.dsn)
    assert page.find_element(By.ID, "empty-command").text == f'sentry-feedback send "It works" --dsn {receiver.dsn}'
    assert "in the last 7 days" in empty.text
    assert page.find_element(By.ID, "hits").text == "0 feedback"

    with sdk(receiver.dsn):
        send("It works")
    wait_for_messages(page, ["It works"])  # the first feedback arrives: the hint goes
    assert not empty.is_displayed()


def test_the_page_loads_nothing_from_outside_its_server(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn):
        send_with_error_and_attachments()
    sign_in(page, receiver)
    page.find_element(By.CSS_SELECTOR, "#list .row-open").click()
    wait_for(page, lambda d: d.execute_script("return document.querySelector('#detail-attachments img')?.complete"))

    names: list[str] = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert names, "the page made no request at all?"
    outside = [name for name in names if not name.startswith(receiver.url + "/")]
    assert outside == []
    assert page.execute_script("return location.origin") == receiver.url
