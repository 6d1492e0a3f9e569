"""The real JavaScript SDK in headless Chromium, posting to the tunnel on the page's own origin.

A page from 127.0.0.1 loads the pinned ``@sentry/browser`` (see ``javascript_sdk.py``) and runs
``Sentry.init({dsn, tunnel: "/tunnel"})``, ``captureException`` and ``captureFeedback`` with an attachment;
the tunnel, served by the same server, forwards to a LocalReceiver. Skipped (failed on CI) without Chromium or
without npm and the registry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from browser.conftest import driver, wait_for  # headless Debian Chromium, one per module
from sentry_feedback.server import LocalReceiver
from sentry_feedback.tunnel import Tunnel

from . import javascript_sdk
from .servers import wait_until, werkzeug_server

__all__ = ["driver"]

#: The attachment's bytes, every byte value: whatever arrives must be exactly these.
ATTACHMENT = list(range(256)) * 3

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script type="importmap">{import_map}</script>
<script type="module">
import * as Sentry from "@sentry/browser";
const result = (window.__result = {{}});
try {{
  Sentry.init({{ dsn: {dsn}, tunnel: "/tunnel", release: "shop@1.0.0", environment: "browser-test" }});
  result.sdk = Sentry.SDK_VERSION;
  {script}
  result.done = true;
}} catch (error) {{
  result.error = String(error && error.stack || error);
}}
</script></head><body><p>Checkout</p></body></html>
"""

CAPTURE = """
try { throw new Error("Checkout failed in the browser"); }
catch (error) { result.errorId = Sentry.captureException(error); }
result.feedbackId = Sentry.captureFeedback(
  { message: "The pay button does nothing", name: "Jane", email: "jane@example.com",
    associatedEventId: result.errorId },
  { attachments: [{ filename: "notes.bin", data: new Uint8Array(BYTES), contentType: "application/octet-stream" }] },
);
result.flushed = await Sentry.flush(5000);
""".replace("BYTES", json.dumps(ATTACHMENT))

RATE_LIMITED = """
result.first = Sentry.captureException(new Error("first error"));
await Sentry.flush(5000);
result.second = Sentry.captureException(new Error("second error, dropped in the browser"));
result.feedbackId = Sentry.captureFeedback({ message: "Feedback is not rate limited" });
result.flushed = await Sentry.flush(5000);
"""


@pytest.fixture(scope="module")
def node_modules() -> Path:
    try:
        return javascript_sdk.install()
    except RuntimeError as exc:
        reason = f"the real JavaScript SDK is not available: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as server:
        yield server


def shop(node_modules: Path, tunnel: Tunnel, dsn: str, script: str) -> Any:
    """The shop's WSGI app: the page at ``/``, the SDK's modules under ``/js``, the tunnel at ``/tunnel``."""
    static = javascript_sdk.static_app(node_modules)
    imports = json.dumps(javascript_sdk.import_map(node_modules, "/js"))
    page = PAGE.format(import_map=imports, dsn=json.dumps(dsn), script=script).encode()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/tunnel":
            return tunnel(environ, start_response)
        if path.startswith("/js/"):
            environ["PATH_INFO"] = path[len("/js") :]
            return static(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))])
        return [page]

    return app


def run_page(driver: WebDriver, url: str) -> dict[str, Any]:
    driver.get(url)
    result: dict[str, Any] = wait_for(
        driver,
        lambda d: d.execute_script("const r = window.__result; return r && (r.done || r.error) ? r : null"),
        "the page's script did not finish",
        timeout=30,
    )
    assert "error" not in result, result["error"]
    return result


def envelopes_with(receiver: LocalReceiver, item_type: str) -> list[Any]:
    return [r for r in receiver.received if r.envelope is not None and r.envelope.items_of_type(item_type)]


def test_the_browser_sdk_sends_an_error_and_a_feedback_through_the_tunnel(
    node_modules: Path, driver: WebDriver, receiver: LocalReceiver
) -> None:
    tunnel = Tunnel(allowed=[receiver.dsn])
    with werkzeug_server(shop(node_modules, tunnel, receiver.dsn, CAPTURE)) as url:
        result = run_page(driver, url + "/")
        wait_until(lambda: envelopes_with(receiver, "feedback"), message="the feedback to arrive")
    tunnel.close()

    assert result["sdk"] == javascript_sdk.VERSION
    assert result["flushed"] is True
    [error_request] = envelopes_with(receiver, "event")
    [feedback_request] = envelopes_with(receiver, "feedback")
    for request in (error_request, feedback_request):
        assert request.status == 200
        assert request.envelope.headers["dsn"] == receiver.dsn
        assert request.envelope.headers["sdk"]["name"] == "sentry.javascript.browser"
        assert request.headers["X-Sentry-Auth"].endswith(f"sentry_client=sentry.javascript.browser/{result['sdk']}")
        assert request.headers["X-Forwarded-For"] == "127.0.0.1"
        assert request.headers["User-Agent"].startswith("sentry-feedback-tunnel/")

    [error] = receiver.store.list_events(event_type="error")
    assert error.event_id == result["errorId"]
    assert error.data["exception"]["values"][0]["value"] == "Checkout failed in the browser"
    assert error.data["sdk"]["name"] == "sentry.javascript.browser"

    [feedback] = receiver.store.list_feedback()
    assert feedback.event_id == result["feedbackId"]
    assert feedback.message == "The pay button does nothing"
    assert feedback.contact_email == "jane@example.com"
    assert feedback.associated_event_id == result["errorId"]
    [attachment] = receiver.store.list_attachments(feedback.event_id)
    assert attachment.filename == "notes.bin"
    assert attachment.data == bytes(ATTACHMENT)


def test_the_browser_sdk_obeys_rate_limits_passed_back_by_the_tunnel(
    node_modules: Path, driver: WebDriver, receiver: LocalReceiver
) -> None:
    limits = {"X-Sentry-Rate-Limits": "60:error:organization", "Retry-After": "60"}
    receiver.respond_with(429, headers=limits, times=None)
    tunnel = Tunnel(allowed=[receiver.dsn])
    with werkzeug_server(shop(node_modules, tunnel, receiver.dsn, RATE_LIMITED)) as url:
        result = run_page(driver, url + "/")
        wait_until(lambda: envelopes_with(receiver, "feedback"), message="the feedback to be sent")
    tunnel.close()

    # The first error got the 429 and its limits through the tunnel; the SDK then kept the second error to
    # itself, and went on sending the categories the limit does not name.
    [error] = envelopes_with(receiver, "event")
    assert error.status == 429
    assert error.envelope.items_of_type("event")[0].get_json()["event_id"] == result["first"]
    [feedback] = envelopes_with(receiver, "feedback")
    assert feedback.envelope.items_of_type("feedback")[0].get_json()["event_id"] == result["feedbackId"]
