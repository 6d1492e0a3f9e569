"""Fixtures and helpers of the inbox's browser tests: headless Debian Chromium, a feedback server, seed data.

One browser per test module (starting Chromium costs most of a second); a fresh ``LocalReceiver`` per test, on
its own port, with feedback sent through the SDK. The page is driven with Selenium and waited for with
``WebDriverWait`` on conditions, never with sleeps. What the page changed is checked through the REST API.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import urllib3
from selenium import webdriver  # in the test extra
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

import sentry_feedback
from sentry_feedback import Attachment
from sentry_feedback.server import LocalReceiver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: The machine's network is closed: without these, Chromium stalls on connections to the outside.
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
)
READ_TOKEN = "read-only-token-1"
#: The environment variable naming a folder for the documentation's screenshots (none: no screenshots).
SCREENSHOTS = "SENTRY_FEEDBACK_SCREENSHOTS"
WAIT = 10.0

T = TypeVar("T")


# -- the browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Debian Chromium, one per test module; skipped (failed on CI) when it is not installed."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        reason = (
            f"the browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
            "apt-get install chromium chromium-driver"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(10)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def page(driver: WebDriver) -> Iterator[WebDriver]:
    """The module's browser for one test: no cookies, no console messages of other tests; afterwards the
    console must show no Content-Security-Policy violation and no uncaught script error."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.get("about:blank")
    browser_log(driver)  # drop what earlier tests left
    yield driver
    problems = console_problems(driver)
    driver.get("about:blank")
    assert not problems, problems


def browser_log(driver: WebDriver) -> list[dict[str, Any]]:
    """The console messages since the last call (``goog:loggingPrefs``): ``{"level", "message", ...}``."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def console_problems(driver: WebDriver) -> list[str]:
    """Console messages that mean the page is broken: CSP violations and uncaught script errors."""
    messages = [str(entry.get("message", "")) for entry in browser_log(driver)]
    return [m for m in messages if "Content Security Policy" in m or "Content-Security-Policy" in m or "Uncaught" in m]


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], message: str = "", timeout: float = WAIT) -> T:
    """Wait until ``condition`` gives something truthy (and return it).

    An element found before a navigation goes stale when the new page comes: that only means "not yet".
    """
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=ignored).until(condition, message)


# -- the server and its API ----------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    """A feedback server for one test, with a read-only token besides the read-and-write one."""
    with LocalReceiver(read_token=READ_TOKEN) as server:
        yield server


@dataclass
class Api:
    """The REST API with a Bearer token: what the page changed, seen from outside."""

    receiver: LocalReceiver

    def request(self, method: str, path: str, body: Any = None) -> urllib3.BaseHTTPResponse:
        headers = {"Authorization": f"Bearer {self.receiver.api_token}"}
        return urllib3.request(method, self.receiver.api_url + path, json=body, headers=headers, timeout=10)

    def item_path(self, feedback_id: str) -> str:
        return f"/projects/{self.receiver.org}/{self.receiver.project_slug}/user-feedback/{feedback_id}/"

    def item(self, feedback_id: str) -> dict[str, Any] | None:
        """The feedback, or None when it is gone (404)."""
        response = self.request("GET", self.item_path(feedback_id))
        if response.status == 404:
            return None
        assert response.status == 200, response.data
        data: dict[str, Any] = response.json()["data"]
        return data

    def status(self, feedback_id: str) -> str | None:
        item = self.item(feedback_id)
        return None if item is None else str(item["status"])

    def set_status(self, feedback_id: str, status: str) -> None:
        response = self.request("PATCH", self.item_path(feedback_id), {"data": {"status": status}})
        assert response.status == 202, response.data

    def create(self, data: dict[str, Any]) -> str:
        response = self.request("POST", f"/organizations/{self.receiver.org}/user-feedback/", {"data": data})
        assert response.status == 201, response.data
        return str(response.json()["data"]["id"])


@pytest.fixture
def api(receiver: LocalReceiver) -> Api:
    return Api(receiver)


# -- feedback through the SDK -----------------------------------------------------------------------------------


def tiny_png(width: int = 64, height: int = 40) -> bytes:
    """A real PNG (a red and blue image), so the browser can decode it: naturalWidth > 0."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + b"".join(bytes((200, 40, 40)) if x < width // 2 else bytes((40, 60, 200)) for x in range(width))
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@contextlib.contextmanager
def sdk(dsn: str, **options: Any) -> Iterator[None]:
    """The SDK sending to ``dsn`` for the block; everything queued has gone out at its end."""
    client = sentry_feedback.init(dsn=dsn, **options)
    try:
        yield
    finally:
        client.close(10)


#: A small shop's checkout, written to a temporary ``shop/checkout.py`` and imported: the linked errors' stack
#: traces (and the documentation's screenshot) show an application's frames, with source context and locals.
CHECKOUT_SOURCE = '''"""The checkout of a small web shop."""


class PaymentDeclined(Exception):
    """The payment provider refused the card."""


def charge_card(card_number, amount, reason="card declined", currency="EUR"):
    provider = "acme-pay"
    last_digits = card_number[-4:]
    raise PaymentDeclined(f"{reason} while charging {amount} {currency} to {last_digits}")


def checkout(cart_total, card_number, reason="card declined"):
    items = 3
    charge_card(card_number, cart_total, reason)
'''
CONTEXT_LINE = 'raise PaymentDeclined(f"{reason} while charging {amount} {currency} to {last_digits}")'


@pytest.fixture(scope="session", autouse=True)
def _shop_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``shop.checkout`` importable for the browser tests (and gone afterwards)."""
    root = tmp_path_factory.mktemp("app")
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("", "utf-8")
    (root / "shop" / "checkout.py").write_text(CHECKOUT_SOURCE, "utf-8")
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in ("shop.checkout", "shop"):
            sys.modules.pop(name, None)


def capture_checkout_error(reason: str = "card declined") -> str:
    """An error event with a real stack (the shop's frames, with source context and locals); its id."""
    shop: Any = importlib.import_module("shop.checkout")
    try:
        shop.checkout(42.5, "4000 0000 0000 0002", reason)
    except shop.PaymentDeclined:
        event_id = sentry_feedback.capture_exception()
    assert event_id is not None
    sentry_feedback.flush(10)
    return event_id


def send(message: str, **fields: Any) -> str:
    """Send one feedback with the active SDK client and wait for the server's answer; its id."""
    return sentry_feedback.send_feedback(message, timeout=10, **fields)


def send_with_error_and_attachments(
    message: str = "The pay button does nothing after I enter my card.",
    *,
    error_value: str = "card declined",
    screenshot_name: str = "screenshot.png",
    **fields: Any,
) -> str:
    """A feedback linked to a checkout error, with a screenshot and a log file."""
    error_id = capture_checkout_error(error_value)
    attachments = [
        Attachment(tiny_png(), filename=screenshot_name, content_type="image/png"),
        Attachment(b"12:00:01 INFO cart ok\n12:00:02 ERROR card declined\n", filename="app.log"),
    ]
    return send(message, associated_event_id=error_id, attachments=attachments, **fields)


def post_envelope(receiver: LocalReceiver, *items: tuple[str, Any], event_id: str | None = None) -> None:
    """Post an envelope of ``(type, payload)`` items, written here rather than by the SDK: transactions with the
    spans a test chooses, a feedback in a given span. The server must accept it."""
    body = json.dumps({"event_id": event_id} if event_id else {}).encode() + b"\n"
    for item_type, payload in items:
        data = json.dumps(payload).encode()
        body += json.dumps({"type": item_type, "length": len(data)}).encode() + b"\n" + data + b"\n"
    auth = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={receiver.public_key}"}
    response = urllib3.request("POST", receiver.envelope_url, body=body, headers=auth, timeout=10)
    assert response.status == 200, response.data


# -- the page -------------------------------------------------------------------------------------------------------


def sign_in(driver: WebDriver, receiver: LocalReceiver, query: str = "", token: str | None = None) -> None:
    """Open the inbox with the token handed over in the URL (the server keeps it in cookies)."""
    suffix = f"&{query}" if query else ""
    driver.get(f"{receiver.url}/?token={token or receiver.api_token}{suffix}")
    wait_for_list(driver)


def wait_for_list(driver: WebDriver) -> None:
    """Wait until the inbox has loaded its first list (rows, or the empty state)."""
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const list = document.getElementById('list');"
            "return Boolean(list) && !list.hasAttribute('aria-busy') && (list.children.length > 0"
            " || !document.getElementById('empty').hidden || !document.getElementById('no-match').hidden"
            " || !document.getElementById('search-error').hidden)"
        ),
        "the inbox did not load its list",
    )


def messages(driver: WebDriver) -> list[str]:
    """The message excerpts of the list, top to bottom."""
    found: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#list .row-message'), e => e.textContent)"
    )
    return found


def wait_for_messages(driver: WebDriver, expected: list[str]) -> None:
    try:
        wait_for(driver, lambda d: messages(d) == expected)
    except Exception as exc:
        raise AssertionError(f"the list shows {messages(driver)!r}, not {expected!r}") from exc


def row(driver: WebDriver, message: str) -> WebElement:
    """The list's row whose message starts with ``message``."""
    for element in driver.find_elements(By.CSS_SELECTOR, "#list .row"):
        if element.find_element(By.CSS_SELECTOR, ".row-message").text.startswith(message):
            return element
    raise AssertionError(f"no row for {message!r} in {messages(driver)!r}")


def selected_id(driver: WebDriver) -> str | None:
    found: str | None = driver.execute_script(
        "const row = document.querySelector('#list .row.selected'); return row && row.getAttribute('data-id')"
    )
    return found


def open_detail(driver: WebDriver, message: str) -> WebElement:
    """Click the row of ``message`` and wait for its detail (and what it loads) to be shown."""
    row(driver, message).find_element(By.CSS_SELECTOR, ".row-open").click()
    detail = driver.find_element(By.ID, "detail")
    wait_for(
        driver,
        lambda d: (
            d.find_element(By.ID, "detail-message").text.startswith(message.split("\n")[0][:40])
            and "Loading" not in detail.text
        ),
        f"the detail of {message!r} did not load",
    )
    return detail


def wait_for_trace(driver: WebDriver) -> bool:
    """Wait until the detail's trace request is answered; whether the trace panel is shown."""
    wait_for(
        driver,
        lambda d: d.execute_script("return !document.getElementById('detail-trace').hasAttribute('aria-busy')"),
        "the trace did not load",
    )
    return bool(driver.find_element(By.ID, "detail-trace-section").is_displayed())


def trace_rows(driver: WebDriver) -> list[dict[str, Any]]:
    """The trace panel's rows, top to bottom: kind, span id, op, name, status, duration, depth, whether
    highlighted, and where its bar and the feedback's mark stand (percent of the timeline)."""
    found: list[dict[str, Any]] = driver.execute_script(
        """
        return Array.from(document.querySelectorAll('#detail-trace .trace-row'), row => {
          const part = selector => { const e = row.querySelector(selector); return e ? e.textContent : null; };
          const mark = row.querySelector('.trace-mark');
          const bar = row.querySelector('.trace-bar');
          return {
            kind: ['transaction', 'span', 'feedback'].find(k => row.classList.contains('trace-' + k)),
            span_id: row.getAttribute('data-span-id'), op: part('.trace-op'), name: part('.trace-name'),
            status: part('.trace-status'), duration: part('.trace-duration'), here: part('.trace-here'),
            depth: Number(row.querySelector('.trace-label').style.getPropertyValue('--depth')),
            current: row.classList.contains('current') && row.getAttribute('aria-current') === 'true',
            bar: bar ? [parseFloat(bar.style.left), parseFloat(bar.style.width)] : null,
            mark: mark ? parseFloat(mark.style.left) : null,
          };
        });
        """
    )
    return found


def search_for(driver: WebDriver, text: str) -> None:
    box = driver.find_element(By.ID, "search")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()


def confirm_dialog(driver: WebDriver) -> WebElement:
    """The in-page confirmation dialog, once it is open."""
    dialog = driver.find_element(By.ID, "confirm-dialog")
    wait_for(driver, lambda d: dialog.get_attribute("open") is not None, "the confirmation did not open")
    return dialog


def save_screenshot(driver: WebDriver, name: str, width: int = 1280, height: int = 800) -> Path | None:
    """Save a screenshot of the viewport at width x height, only when $SENTRY_FEEDBACK_SCREENSHOTS names a folder."""
    folder = os.environ.get(SCREENSHOTS)
    if not folder:
        return None
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        wait_for(driver, lambda d: d.execute_script("return window.innerWidth") == width)
        driver.execute_script("document.activeElement && document.activeElement.blur()")
        assert driver.save_screenshot(str(path)), path
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path
