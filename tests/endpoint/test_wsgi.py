"""The endpoint as a WSGI application, over real HTTP on 127.0.0.1 and called directly."""

from __future__ import annotations

import html
import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import urllib3

import sentry_feedback
from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint, RequestHead
from sentry_feedback.server import LocalReceiver
from sentry_feedback.wsgi import SentryWsgiMiddleware

from .conftest import (
    ERROR_ID,
    JPEG,
    Served,
    attachments,
    call,
    delivered,
    environ,
    multipart,
    post_form,
    post_json,
    tiny_png,
)

Init = Callable[..., sentry_feedback.Client]
Serve = Callable[[Callable[..., Any]], Served]
PNG = tiny_png()


def shop(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The application the endpoint is mounted in front of."""
    sentry_feedback.set_user({"id": environ.get("HTTP_X_USER_ID", "anonymous")})
    if environ["PATH_INFO"] == "/checkout":
        try:
            raise ZeroDivisionError("the cart is empty")
        except ZeroDivisionError:
            sentry_feedback.capture_exception()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"shop"]


def test_multipart_with_files_over_http(sentry_init: Init, sentry_receiver: LocalReceiver, serve: Serve) -> None:
    sentry_init(release="shop@1")
    site = serve(FeedbackEndpoint().mount_wsgi(shop))
    body, content_type = multipart(
        {
            "message": "The pay button does nothing\r\nafter I enter my card",
            "email": "jane@example.com",
            "name": "Jane",
            "url": "https://shop.example.com/checkout",
            "associated_event_id": ERROR_ID.upper(),
            # Never the client's to choose: ignored.
            "event_id": "0" * 32,
            "source": "forged",
            "tags": "admin=true",
            "user": "root",
            "contexts": "{}",
        },
        [
            ("attachments", "C:\\Users\\jane\\screenshot.png", "image/png", PNG),
            ("attachments", "app.log", "application/octet-stream", b"12:00 ERROR card declined\n"),
        ],
    )
    answer = urllib3.request(
        "POST",
        f"{site.url}/feedback",
        body=body,
        headers={"Content-Type": content_type, "Accept": "application/json", "X-User-Id": "42"},
        timeout=10,
    )
    assert answer.status == 202, answer.data
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "no-store"
    (feedback,) = delivered(sentry_receiver)
    assert answer.json() == {"id": feedback.event_id}
    assert feedback.event_id != "0" * 32
    assert feedback.data["contexts"]["feedback"] == {
        "message": "The pay button does nothing\nafter I enter my card",
        "contact_email": "jane@example.com",
        "name": "Jane",
        "url": "https://shop.example.com/checkout",
        "associated_event_id": ERROR_ID,
        "source": "feedback-endpoint",
    }
    assert "tags" not in feedback.data or "admin" not in feedback.data["tags"]
    assert feedback.user is None  # the endpoint answered before the shop set a user
    request = feedback.data["request"]
    assert request["method"] == "POST"
    assert request["url"] == f"http://127.0.0.1:{site.port}/feedback"
    assert feedback.data["release"] == "shop@1"
    files = attachments(sentry_receiver, feedback)
    assert [(f.filename, f.content_type, f.data) for f in files] == [
        ("app.log", "text/plain", b"12:00 ERROR card declined\n"),
        ("screenshot.png", "image/png", PNG),
    ]


def test_the_request_scope_of_the_middleware(sentry_init: Init, sentry_receiver: LocalReceiver, serve: Serve) -> None:
    """Behind the SDK's middleware: the user the application set, the request's last error, its trace."""
    sentry_init()
    endpoint = FeedbackEndpoint()

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        sentry_feedback.set_user({"id": environ.get("HTTP_X_USER_ID", "anonymous")})
        if environ.get("HTTP_X_FAIL"):
            try:
                raise KeyError("no such order")
            except KeyError:
                sentry_feedback.capture_exception()
        return endpoint(environ, start_response)

    site = serve(SentryWsgiMiddleware(application))
    trace = "771a43a4192642f0b136d5159a501700-b0e6f15b45c36b12"
    headers = {"X-User-Id": "42", "X-Fail": "1", "sentry-trace": trace, "Accept": "application/json"}
    answer = urllib3.request("POST", f"{site.url}/", json={"message": "It broke"}, headers=headers, timeout=10)
    assert answer.status == 202, answer.data
    (feedback,) = delivered(sentry_receiver)
    (error,) = sentry_receiver.store.list_events()
    assert feedback.associated_event_id == error.event_id  # linked to the request's last error
    assert feedback.user == {"id": "42"}
    assert feedback.trace_id == "771a43a4192642f0b136d5159a501700"


def test_no_link_outside_a_request(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    """Standalone, the process's last error (another request's, another thread's) is never linked."""
    sentry_init()
    try:
        raise ValueError("somewhere else")
    except ValueError:
        assert sentry_feedback.capture_exception() is not None
    assert post_json(FeedbackEndpoint(), {"message": "unrelated"}).status == 202
    (feedback,) = delivered(sentry_receiver)
    assert feedback.associated_event_id is None


def test_link_last_error_off(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint(EndpointOptions(link_last_error=False))

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        sentry_feedback.capture_message("an error in this request")
        return endpoint(environ, start_response)

    body = json.dumps({"message": "not linked"}).encode()
    assert call(SentryWsgiMiddleware(application), environ(body, content_type="application/json")).status == 202
    (feedback,) = delivered(sentry_receiver)
    assert feedback.associated_event_id is None


def test_error_page_form_continues_the_trace(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    """The form's hidden fields carry the error page's trace and error id to the feedback."""
    sentry_init()
    endpoint = FeedbackEndpoint()
    with sentry_feedback.continue_trace({"sentry-trace": "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1"}):
        error_id = sentry_feedback.capture_message("checkout failed", "error")
        page = endpoint.form_html("/feedback", associated_event_id=error_id)
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    assert hidden["associated_event_id"] == error_id
    fields = {**{name: html.unescape(value) for name, value in hidden.items()}, "message": "Checkout fails"}
    assert post_form(endpoint, fields).status == 202
    (feedback,) = delivered(sentry_receiver)
    assert feedback.associated_event_id == error_id
    assert feedback.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_json_and_urlencoded(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint()
    assert post_json(endpoint, {"message": "by JSON", "email": None, "name": "", "url": None}).status == 202
    body = b"message=by+form&email=ann%40example.com&associated_event_id=" + ERROR_ID.encode()
    answer = call(endpoint, environ(body, content_type="application/x-www-form-urlencoded; charset=UTF-8"))
    assert answer.status == 202
    feedback = {f.message: f for f in delivered(sentry_receiver, 2)}
    assert feedback["by JSON"].data["contexts"]["feedback"] == {"message": "by JSON", "source": "feedback-endpoint"}
    assert feedback["by form"].data["contexts"]["feedback"]["contact_email"] == "ann@example.com"
    assert feedback["by form"].associated_event_id == ERROR_ID


def test_url_defaults_to_the_referer(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint()
    assert post_json(endpoint, {"message": "a"}, HTTP_REFERER="https://shop.example.com/cart?x=1").status == 202
    assert post_json(endpoint, {"message": "b"}, HTTP_REFERER="javascript:alert(1)").status == 202
    feedback = {f.message: f for f in delivered(sentry_receiver, 2)}
    assert feedback["a"].data["contexts"]["feedback"]["url"] == "https://shop.example.com/cart?x=1"
    assert "url" not in feedback["b"].data["contexts"]["feedback"]


def test_a_browser_without_javascript_gets_a_page(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint()
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    answer = post_form(endpoint, {"message": "plain post"}, HTTP_ACCEPT=accept)
    assert answer.status == 202
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    (feedback,) = delivered(sentry_receiver)
    assert f"<code>{feedback.event_id}</code>" in answer.body.decode()
    refused = post_form(endpoint, {"message": "<script>alert(1)</script>" * 300}, HTTP_ACCEPT=accept)
    assert refused.status == 400
    assert "<script>" not in refused.body.decode()
    assert "message is 7500 characters long" in refused.body.decode()


def test_methods_and_static_files(sentry_init: Init, serve: Serve) -> None:
    sentry_init()
    site = serve(FeedbackEndpoint().mount_wsgi(shop, "/feedback/"))
    http = urllib3.PoolManager(retries=False, timeout=10)
    assert http.request("GET", f"{site.url}/elsewhere").data == b"shop"
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = http.request(method, f"{site.url}/feedback")
        assert answer.status == 405, method
        assert answer.headers["Allow"] == "POST, OPTIONS"
        assert answer.json()["error"] == "method_not_allowed"
    options = http.request("OPTIONS", f"{site.url}/feedback/")
    assert (options.status, options.headers["Allow"], options.data) == (204, "POST, OPTIONS", b"")
    script = http.request("GET", f"{site.url}/feedback/form.js")
    assert script.status == 200
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert b"data-sentry-feedback" in script.data
    style = http.request("GET", f"{site.url}/feedback/form.css")
    assert (style.status, style.headers["Content-Type"]) == (200, "text/css; charset=utf-8")
    head = http.request("HEAD", f"{site.url}/feedback/form.js")
    assert head.status == 200 and head.data == b""
    assert http.request("POST", f"{site.url}/feedback/form.js").status == 405
    assert http.request("GET", f"{site.url}/feedback/other.js").status == 200  # the shop's


def test_wait_for_delivery(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint(EndpointOptions(wait_for_delivery=True, delivery_timeout=10))
    answer = post_json(endpoint, {"message": "delivered"})
    assert answer.status == 201
    (feedback,) = sentry_receiver.store.list_feedback()
    assert answer.json == {"id": feedback.event_id}

    sentry_receiver.respond_with(500)
    failed = post_json(endpoint, {"message": "refused by Sentry"})
    assert failed.status == 503
    assert failed.json["error"] == "not_delivered"
    assert "500" not in failed.json["detail"]  # what Sentry said stays in the log

    sentry_receiver.respond_with(429, headers={"Retry-After": "30"})
    limited = post_json(endpoint, {"message": "rate-limited by Sentry"})
    assert limited.status == 503
    assert 29 <= int(limited.headers["Retry-After"]) <= 30


def test_sdk_disabled_answers_503() -> None:
    answer = post_json(FeedbackEndpoint(), {"message": "nobody listens"})
    assert answer.status == 503
    assert answer.json["error"] == "not_accepted"


def test_a_feedback_dropped_by_the_application(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(before_send_feedback=lambda event, hint: None)
    answer = post_json(FeedbackEndpoint(), {"message": "dropped by before_send_feedback"})
    assert answer.status == 503
    sentry_feedback.flush(10)
    assert sentry_receiver.store.list_feedback() == []


def test_unexpected_failures_answer_500_and_are_logged(
    sentry_init: Init, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sentry_init()
    from sentry_feedback.endpoint import _endpoint

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(_endpoint, "capture_feedback", broken)
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        answer = post_json(FeedbackEndpoint(), {"message": "boom"})
    assert answer.status == 500
    assert answer.json == {"error": "internal_error", "detail": "the feedback could not be handled"}
    assert any("unexpected error" in r.message and r.exc_info for r in caplog.records)


def test_renamed_jpeg_is_stored_as_what_it_is(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    answer = post_form(FeedbackEndpoint(), {"message": "m"}, [("shot", "shot.png", "image/png", JPEG)])
    assert answer.status == 202
    (feedback,) = delivered(sentry_receiver)
    (stored,) = attachments(sentry_receiver, feedback)
    assert (stored.filename, stored.content_type) == ("shot.png", "image/jpeg")


def test_an_empty_file_input_is_no_file(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    answer = post_form(
        FeedbackEndpoint(), {"message": "no file"}, [("attachments", "", "application/octet-stream", b"")]
    )
    assert answer.status == 202
    (feedback,) = delivered(sentry_receiver)
    assert attachments(sentry_receiver, feedback) == []


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        EndpointOptions(max_message_length=5000)
    with pytest.raises(TypeError):
        EndpointOptions(allowed_content_types="image/png")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EndpointOptions(allowed_content_types=("png",))
    with pytest.raises(ValueError):
        EndpointOptions(allowed_origins=("shop.example.com",))
    with pytest.raises(TypeError):
        EndpointOptions(use_x_forwarded_for=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FeedbackEndpoint({"max_body_size": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FeedbackEndpoint().mount_wsgi(shop, "feedback")
    assert EndpointOptions(allowed_content_types=("IMAGE/*",)).allows_content_type("image/avif")


def test_importing_the_sdk_does_not_import_the_endpoint() -> None:
    import subprocess

    code = (
        "import sys, sentry_feedback, sentry_feedback.wsgi, sentry_feedback.asgi\n"
        "assert 'sentry_feedback.endpoint' not in sys.modules\n"
        "import sentry_feedback.endpoint, sentry_feedback.endpoint.flask, sentry_feedback.endpoint.django\n"
        "import sentry_feedback.endpoint.starlette\n"
        "assert not {'flask', 'django', 'starlette'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_public_names() -> None:
    import sentry_feedback.endpoint as endpoint_package

    assert sorted(endpoint_package.__all__) == [
        "AddressRateLimiter",
        "DEFAULT_ALLOWED_CONTENT_TYPES",
        "EndpointOptions",
        "EndpointResponse",
        "FeedbackAsgiApp",
        "FeedbackEndpoint",
        "RateLimit",
        "RequestHead",
        "feedback_form_html",
    ]
    for name in endpoint_package.__all__:
        value = getattr(endpoint_package, name)
        assert isinstance(value, tuple) or value.__doc__, name


def test_the_core_for_another_framework(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    """``handle``: a head and a way to read the body, from any framework."""
    sentry_init()
    body = json.dumps({"message": "from elsewhere"}).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    head = RequestHead.of("post", "/feedback", headers, "192.0.2.1", ("shop.example.com", 443, "https"))
    assert head.headers["host"] == "shop.example.com"
    response = FeedbackEndpoint().handle(head, io.BytesIO(body).read, terminated=False)
    assert (response.status, response.status_line, response.header("content-type")) == (
        202,
        "202 Accepted",
        "application/json",
    )
    (feedback,) = delivered(sentry_receiver)
    assert json.loads(response.body) == {"id": feedback.event_id}
