"""FlaskIntegration with a real Flask application, through Flask's test client."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import flask
import pytest

import sentry_feedback
from integrations_web.direct import stored
from sentry_feedback.integrations.flask import FlaskIntegration
from sentry_feedback.integrations.logging import LoggingIntegration
from sentry_feedback.server import LocalReceiver
from sentry_feedback.wsgi import SentryWsgiMiddleware

Init = Callable[..., sentry_feedback.Client]


def make_app() -> flask.Flask:
    app = flask.Flask(__name__)
    together = threading.Barrier(2)

    @app.get("/users/<int:user_id>/feedback")
    def feedback(user_id: int) -> str:
        sentry_feedback.set_user({"id": str(user_id)})
        return sentry_feedback.capture_feedback(f"feedback from {user_id}") or "dropped"

    @app.get("/together/<user>")
    def together_view(user: str) -> str:
        sentry_feedback.set_user({"id": user})
        sentry_feedback.set_tag("user_tag", user)
        together.wait(10)  # both requests have set their user before either captures
        return sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped"

    @app.get("/orders/<int:order_id>/pay")
    def pay(order_id: int) -> str:
        sentry_feedback.set_user({"id": "payer"})
        raise ZeroDivisionError(f"cannot pay order {order_id}")

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return f"error {sentry_feedback.last_event_id()}", 500

    return app


def test_error_captured_once_with_mechanism_flask(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    answer = make_app().test_client().get("/orders/7/pay?coupon=SUMMER")
    (event,), _ = stored(sentry_receiver)
    # The 500 handler renders the id of the error of this request.
    assert (answer.status_code, answer.text) == (500, f"error {event.event_id}")
    (value,) = event.data["exception"]["values"]
    assert value["type"] == "ZeroDivisionError"
    assert value["mechanism"] == {"type": "flask", "handled": False, "exception_id": 0}
    assert event.data["transaction"] == "/orders/<int:order_id>/pay"
    assert event.data["transaction_info"] == {"source": "route"}
    assert event.data["user"] == {"id": "payer"}
    assert event.data["request"]["url"] == "http://localhost/orders/7/pay"
    assert event.data["request"]["query_string"] == "coupon=SUMMER"
    assert event.data["sdk"]["integrations"] == sorted([*event.data["sdk"]["integrations"]])
    assert "flask" in event.data["sdk"]["integrations"]


def test_error_captured_once_without_dedupe(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    """Flask logs the exception after the signal: the logging integration does not report it again."""
    sentry_init(default_integrations=False, integrations=[LoggingIntegration(), FlaskIntegration()])
    answer = make_app().test_client().get("/orders/1/pay")
    (event,), _ = stored(sentry_receiver)
    assert answer.text == f"error {event.event_id}"
    assert event.data["sdk"]["integrations"] == ["flask", "logging"]
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "flask"


@pytest.mark.parametrize("wrapped_by_hand", [False, True])
def test_propagated_error_not_captured_again_by_wsgi(
    sentry_init: Init, sentry_receiver: LocalReceiver, wrapped_by_hand: bool
) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    app = make_app()
    app.testing = True  # Flask raises the exception through the WSGI layer
    if wrapped_by_hand:
        app.wsgi_app = SentryWsgiMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    with pytest.raises(ZeroDivisionError):
        app.test_client().get("/orders/2/pay")
    (event,), _ = stored(sentry_receiver)
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "flask"


def test_feedback_in_a_view_has_request_data_and_transaction(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    answer = (
        make_app()
        .test_client()
        .get("/users/42/feedback?page=2", headers={"Authorization": "Bearer secret", "X-Custom": "yes"})
    )
    _, (feedback,) = stored(sentry_receiver)
    assert answer.text == feedback.event_id
    request = feedback.data["request"]
    assert request["method"] == "GET"
    assert request["url"] == "http://localhost/users/42/feedback"
    assert request["query_string"] == "page=2"
    assert request["headers"]["Authorization"] == "[Filtered]"
    assert request["headers"]["X-Custom"] == "yes"
    assert feedback.data["transaction"] == "/users/<int:user_id>/feedback"
    assert feedback.data["transaction_info"] == {"source": "route"}
    assert feedback.user == {"id": "42"}  # no IP address without send_default_pii
    assert "flask" in feedback.data["sdk"]["integrations"]


def test_endpoint_transaction_style(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration(transaction_style="endpoint")])
    make_app().test_client().get("/users/5/feedback")
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.data["transaction"] == "feedback"
    assert feedback.data["transaction_info"] == {"source": "component"}


def test_ip_address_with_send_default_pii(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()], send_default_pii=True)
    make_app().test_client().get("/users/9/feedback", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.user == {"id": "9", "ip_address": "203.0.113.7"}


@pytest.mark.parametrize("send_default_pii", [True, False])
def test_flask_login_user_with_send_default_pii(
    sentry_init: Init, sentry_receiver: LocalReceiver, send_default_pii: bool
) -> None:
    flask_login = pytest.importorskip("flask_login")

    class Member(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, user_id: str) -> None:
            self.id = user_id
            self.email = f"{user_id}@example.org"

    sentry_init(send_default_pii=send_default_pii)
    app = flask.Flask(__name__)
    app.secret_key = "test"
    manager = flask_login.LoginManager(app)
    manager.user_loader(Member)

    @app.get("/signed-in/<name>")
    def signed_in(name: str) -> str:
        flask_login.login_user(Member(name))
        return sentry_feedback.capture_feedback("signed in") or "dropped"

    @app.get("/anonymous")
    def anonymous() -> str:
        return sentry_feedback.capture_feedback("anonymous") or "dropped"

    @app.get("/scope-user")
    def scope_user() -> str:
        flask_login.login_user(Member("dana"))
        sentry_feedback.set_user({"id": "from-scope"})
        return sentry_feedback.capture_feedback("scope user") or "dropped"

    client = app.test_client(use_cookies=False)  # each request signed out at first
    for path in ("/signed-in/carl", "/anonymous", "/scope-user"):
        assert client.get(path, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    _, feedback = stored(sentry_receiver)
    users = {item.message: item.user for item in feedback}
    if send_default_pii:
        assert users == {
            "signed in": {"id": "carl", "email": "carl@example.org", "ip_address": "203.0.113.9"},
            "anonymous": {"ip_address": "203.0.113.9"},
            "scope user": {"id": "from-scope", "email": "dana@example.org", "ip_address": "203.0.113.9"},
        }
    else:
        assert users == {"signed in": None, "anonymous": None, "scope user": {"id": "from-scope"}}


def test_scopes_of_concurrent_requests_do_not_mix(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    app = make_app()
    answers: dict[str, str] = {}

    def request(user: str) -> None:
        answers[user] = app.test_client().get(f"/together/{user}").text

    threads = [threading.Thread(target=request, args=(user,)) for user in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    _, feedback = stored(sentry_receiver)
    assert len(feedback) == 2
    for item in feedback:
        user = item.message.removeprefix("feedback from ")
        assert answers[user] == item.event_id
        assert item.user == {"id": user}
        assert item.data["tags"]["user_tag"] == user
        assert item.data["transaction"] == "/together/<user>"
    assert {item.trace_id for item in feedback} != {feedback[0].trace_id}  # a trace per request
    assert sentry_feedback.get_isolation_scope().user is None  # nothing leaked into the test's scope


def test_werkzeug_log_records_are_ignored(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    app = make_app()

    @app.get("/logged")
    def logged() -> str:
        werkzeug = logging.getLogger("werkzeug")
        werkzeug.info('127.0.0.1 - - "GET /logged HTTP/1.1" 200 -')
        werkzeug.error("Error on request", exc_info=(ValueError, ValueError("from werkzeug"), None))
        logging.getLogger("shop").warning("kept")
        return sentry_feedback.capture_feedback("after the log lines") or "dropped"

    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.INFO)
    try:
        app.test_client().get("/logged")
    finally:
        werkzeug.setLevel(level)
    events, (feedback,) = stored(sentry_receiver)
    assert events == []
    crumbs = feedback.data.get("breadcrumbs", {}).get("values", [])
    assert [crumb["category"] for crumb in crumbs] == ["shop"]


def test_integration_is_off_for_a_client_without_it(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    sentry_init(default_integrations=False)  # a new client, without the flask integration (hooks stay)
    answer = make_app().test_client().get("/users/3/feedback")
    _, (feedback,) = stored(sentry_receiver)
    assert answer.text == feedback.event_id
    assert "request" not in feedback.data and "transaction" not in feedback.data


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="transaction_style"):
        FlaskIntegration(transaction_style="path")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FlaskIntegration(use_x_forwarded_for=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FlaskIntegration(max_request_body_size=-1)
