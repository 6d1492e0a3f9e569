"""The Flask blueprint, through Flask's test client: with and without the Flask integration."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable

import pytest

import sentry_feedback
from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint
from sentry_feedback.server import LocalReceiver

from .conftest import attachments, delivered, tiny_png

flask = pytest.importorskip("flask")

from sentry_feedback.endpoint.flask import feedback_blueprint  # noqa: E402
from sentry_feedback.integrations.flask import FlaskIntegration  # noqa: E402


@pytest.fixture(autouse=True)
def _rfc_2046_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Werkzeug's test client makes boundaries from ``time()`` and ``random()``: about one in a thousand is
    longer than the 70 characters RFC 2046 allows (``random()`` under 0.001 prints with more digits), and the
    endpoint rightly refuses it. The tests post with a valid boundary of their own."""
    import werkzeug.test

    encode = werkzeug.test.stream_encode_multipart

    def with_valid_boundary(*args: object, boundary: str | None = None, **kwargs: object) -> object:
        return encode(*args, boundary=boundary or "sentry-feedback-test-boundary", **kwargs)  # type: ignore[arg-type, misc]

    monkeypatch.setattr(werkzeug.test, "stream_encode_multipart", with_valid_boundary)


Init = Callable[..., sentry_feedback.Client]
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def make_app(endpoint: FeedbackEndpoint | None = None) -> flask.Flask:
    app = flask.Flask("shop")
    endpoint = endpoint or FeedbackEndpoint()
    app.register_blueprint(feedback_blueprint(endpoint))

    @app.before_request
    def who() -> None:
        sentry_feedback.set_user({"id": flask.request.headers.get("X-User-Id", "anonymous")})

    @app.get("/orders/<int:order_id>/pay")
    def pay(order_id: int) -> str:
        raise ZeroDivisionError(f"the cart of order {order_id} is empty")

    @app.errorhandler(500)
    def error_page(error: Exception) -> tuple[str, int]:
        form = endpoint.form_html("/feedback", associated_event_id=sentry_feedback.last_event_id())
        return f"<h1>Sorry!</h1>{form}", 500

    return app


def test_error_page_to_linked_feedback(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    browser = make_app().test_client()
    page = browser.get("/orders/7/pay", headers={"X-User-Id": "42"})
    assert page.status_code == 500
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}
    assert '<script src="/feedback/form.js" defer></script>' in page.text
    png = tiny_png()
    answer = browser.post(
        "/feedback",
        headers={"X-User-Id": "42", "Accept": "application/json"},
        data={
            **fields,
            "message": "Checkout fails",
            "attachments": [(io.BytesIO(png), "checkout.png", "image/png")],
        },
    )
    assert answer.status_code == 202, answer.text
    (feedback,) = delivered(sentry_receiver)
    (error,) = sentry_receiver.store.list_events()
    assert answer.json == {"id": feedback.event_id}
    assert feedback.associated_event_id == error.event_id == fields["associated_event_id"]
    assert feedback.trace_id == error.data["contexts"]["trace"]["trace_id"]  # the error page's trace
    assert feedback.user == error.data["user"] == {"id": "42"}
    assert feedback.data["transaction"] == "/feedback"
    assert feedback.data["request"]["url"] == "http://localhost/feedback"
    ((name, content_type, data),) = [
        (a.filename, a.content_type, a.data) for a in attachments(sentry_receiver, feedback)
    ]
    assert (name, content_type, data) == ("checkout.png", "image/png", png)


def test_plain_form_post_without_javascript(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(auto_enabling_integrations=False)  # no integration: the view opens the request's scope itself
    browser = make_app().test_client()
    answer = browser.post(
        "/feedback/",
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Referer": "http://localhost/orders/7/pay"},
        data={"message": "No JavaScript here", "email": "jane@example.com"},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202
    assert answer.mimetype == "text/html"
    (feedback,) = delivered(sentry_receiver)
    assert feedback.event_id in answer.text
    assert feedback.data["contexts"]["feedback"]["url"] == "http://localhost/orders/7/pay"
    assert feedback.data["request"]["method"] == "POST"
    assert feedback.user == {"id": "anonymous"}


def test_routes_and_refusals(sentry_init: Init) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    endpoint = FeedbackEndpoint(EndpointOptions(max_body_size=2000))
    browser = make_app(endpoint).test_client()
    assert browser.get("/feedback/form.js").mimetype == "text/javascript"
    assert browser.get("/feedback/form.css").mimetype == "text/css"
    refused = browser.get("/feedback")
    assert (refused.status_code, refused.headers["Allow"]) == (405, "POST, OPTIONS")
    assert browser.open("/feedback", method="OPTIONS").status_code == 204
    big = browser.post("/feedback", data={"message": "m", "f": (io.BytesIO(b"x" * 3000), "a.log", "text/plain")})
    assert big.status_code == 413 and big.json["error"] == "body_too_large"
    cross = browser.post("/feedback", json={"message": "m"}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert browser.post("/feedback", json={"message": "m", "associated_event_id": "x"}).status_code == 400


def test_blueprint_at_the_root_and_with_a_name(sentry_init: Init) -> None:
    sentry_init()
    app = flask.Flask("root")
    app.register_blueprint(feedback_blueprint(name="fb", url_prefix="/"))
    app.register_blueprint(feedback_blueprint(name="other", url_prefix="/api/v1/feedback"))
    client = app.test_client()
    assert client.post("/", json={"message": "m"}).status_code == 202
    assert client.post("/api/v1/feedback/", json={"message": "m"}).status_code == 202
    with app.test_request_context():
        assert flask.url_for("fb.feedback") == "/"
        assert flask.url_for("other.form_js") == "/api/v1/feedback/form.js"
    with pytest.raises(TypeError):
        feedback_blueprint(object())  # type: ignore[arg-type]
