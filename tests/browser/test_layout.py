"""Readable on a phone and accessible: no sideways scrolling, list and detail stacked, labels, enough contrast."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from sentry_feedback.server import LocalReceiver

from .conftest import open_detail, sdk, send, send_with_error_and_attachments, sign_in, wait_for, wait_for_messages

MESSAGE = "The pay button does nothing after I enter my card."

#: Every form control without a label, a labelling ARIA attribute or a wrapping <label>; buttons without a name.
UNLABELLED = """
const problems = [];
for (const el of document.querySelectorAll("input, select, textarea")) {
  if (el.type === "hidden") continue;
  const named = el.labels && el.labels.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
  if (!named) problems.push(el.outerHTML.slice(0, 120));
}
for (const el of document.querySelectorAll("button, a[href]")) {
  const name = (el.textContent || "").trim() || el.getAttribute("aria-label") || el.getAttribute("title");
  if (!name) problems.push(el.outerHTML.slice(0, 120));
}
return problems;
"""

#: The WCAG contrast ratio of each visible text element's colour against the first opaque background behind it.
CONTRAST = """
function rgb(text) {
  const m = text.match(/[\\d.]+/g).map(Number);
  return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
}
function lum(c) {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function background(el) {
  for (; el; el = el.parentElement) {
    const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.a > 0.9) return c;
  }
  return {r: 255, g: 255, b: 255, a: 1};
}
const worst = [];
for (const el of document.querySelectorAll(arguments[0])) {
  if (!el.offsetParent || !el.textContent.trim()) continue;
  const fg = lum(rgb(getComputedStyle(el).color)), bg = lum(background(el));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  worst.push([Math.round(ratio * 100) / 100, el.tagName + "#" + el.id + "." + el.className]);
}
return worst.sort((a, b) => a[0] - b[0]).slice(0, 3);
"""


@pytest.fixture
def phone(page: WebDriver) -> Iterator[WebDriver]:
    page.set_window_size(390, 844)
    try:
        yield page
    finally:
        page.set_window_size(1280, 800)


def test_on_a_phone_the_list_and_the_detail_take_turns(phone: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn, environment="production"):
        send("Dark mode, please", name="Ana")
        send_with_error_and_attachments(email="jane@example.com", name="Jane Doe")
    sign_in(phone, receiver)
    wait_for_messages(phone, [MESSAGE, "Dark mode, please"])

    def no_sideways_scrolling(driver: WebDriver) -> bool:
        return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"))

    assert no_sideways_scrolling(phone)
    open_detail(phone, MESSAGE)

    def in_view(element_id: str) -> bool:
        script = "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        script += " return r.top < window.innerHeight && r.bottom > 0;"
        return bool(phone.execute_script(script, element_id))

    back = phone.find_element(By.ID, "detail-back")
    wait_for(phone, lambda d: back.is_displayed() and in_view("detail-message"), "the detail is not in view")
    assert no_sideways_scrolling(phone)
    back.click()
    wait_for(phone, lambda d: in_view("list"), "the list did not come back into view")


def test_every_control_is_labelled_and_text_has_enough_contrast(page: WebDriver, receiver: LocalReceiver) -> None:
    with sdk(receiver.dsn, environment="production"):
        send_with_error_and_attachments(email="jane@example.com", name="Jane Doe")
    sign_in(page, receiver)
    wait_for_messages(page, [MESSAGE])
    open_detail(page, MESSAGE)
    assert page.execute_script(UNLABELLED) == []
    # WCAG AA: 4.5 for body text. Buttons, labels, the list, the detail and the stack trace.
    worst = page.execute_script(CONTRAST, "body, button, label, .row-contact, .row-time, #detail dt, #detail dd, code")
    assert worst and worst[0][0] >= 4.5, worst
    # The keyboard reaches the search box first after the skip links, and the focus is visible there.
    page.find_element(By.TAG_NAME, "body").click()
    page.find_element(By.ID, "search").click()
    outline = page.execute_script(
        "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.boxShadow];"
    )
    assert outline != ["none", "none"], outline
