"""FlaskIntegration at its edges, with real Flask applications: a second setup, odd endpoints, failing
user lookups, clients without the integration, pushed request contexts and unusable client addresses."""

from __future__ import annotations

import logging
from collections.abc import Callable

import flask
import pytest

import sentry_feedback
from integrations_web.direct import stored
from sentry_feedback.integrations.flask import FlaskIntegration
from sentry_feedback.server import LocalReceiver

Init = Callable[..., sentry_feedback.Client]


def failing_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/orders/<int:order_id>/pay")
    def pay(order_id: int) -> str:
        raise ZeroDivisionError(f"cannot pay order {order_id}")

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return f"error {sentry_feedback.last_event_id()}", 500

    return app


def test_a_second_setup_once_wraps_flask_only_once(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    wrapped = flask.Flask.__call__
    FlaskIntegration().setup_once()  # e.g. a second SDK set-up in the same process
    assert flask.Flask.__call__ is wrapped
    answer = failing_app().test_client().get("/orders/4/pay")
    (event,), _ = stored(sentry_receiver)  # captured once, not once per set-up
    assert answer.text == f"error {event.event_id}"
    assert event.data["transaction"] == "/orders/<int:order_id>/pay"
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "flask"


def test_an_endpoint_that_is_no_string_falls_back_to_the_url_rule(
    sentry_init: Init, sentry_receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    sentry_init(integrations=[FlaskIntegration(transaction_style="endpoint")])
    app = flask.Flask(__name__)
    app.add_url_rule(
        "/odd/<name>",
        endpoint=frozenset({"odd"}),  # Flask accepts any hashable endpoint
        view_func=lambda name: sentry_feedback.capture_feedback(f"odd {name}") or "dropped",
    )
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        answer = app.test_client().get("/odd/x")
    _, (feedback,) = stored(sentry_receiver)
    assert (answer.status_code, answer.text) == (200, feedback.event_id)
    assert feedback.data["transaction"] == "/odd/<name>"
    assert feedback.data["transaction_info"] == {"source": "route"}
    assert "could not name the transaction of a Flask request" in caplog.text


def test_a_failing_flask_login_user_keeps_the_event(
    sentry_init: Init, sentry_receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    flask_login = pytest.importorskip("flask_login")

    class Member(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, user_id: str) -> None:
            self.id = user_id

        @property
        def email(self) -> str:
            raise RuntimeError("the profile service is down")

    sentry_init(integrations=[FlaskIntegration()], send_default_pii=True)
    app = flask.Flask(__name__)
    app.secret_key = "test"
    flask_login.LoginManager(app).user_loader(Member)

    @app.get("/signed-in")
    def signed_in() -> str:
        flask_login.login_user(Member("carl"))
        return sentry_feedback.capture_feedback("signed in") or "dropped"

    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        answer = app.test_client(use_cookies=False).get("/signed-in", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    _, (feedback,) = stored(sentry_receiver)
    assert answer.text == feedback.event_id
    assert feedback.user == {"ip_address": "203.0.113.9"}  # the WSGI layer's address; nothing from the user
    assert "could not add the request's user" in caplog.text


def test_errors_are_not_captured_for_a_client_without_the_integration(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    sentry_init(default_integrations=False)  # the hooks stay installed, the integration is off
    answer = failing_app().test_client().get("/orders/5/pay")
    assert (answer.status_code, answer.text) == (500, "error None")
    sentry_feedback.capture_feedback("after")
    events, (feedback,) = stored(sentry_receiver)
    assert events == []
    assert feedback.message == "after"


def test_the_signal_sent_without_an_exception_captures_nothing(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init(integrations=[FlaskIntegration()])
    app = flask.Flask(__name__)

    @app.get("/extension")
    def extension() -> str:
        flask.got_request_exception.send(app)  # as an extension might, with no exception
        return sentry_feedback.capture_feedback("no error") or "dropped"

    answer = app.test_client().get("/extension")
    events, (feedback,) = stored(sentry_receiver)
    assert events == []
    assert answer.text == feedback.event_id


def test_a_pushed_request_context_gives_the_client_address(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FlaskIntegration()], send_default_pii=True)
    app = flask.Flask(__name__)
    # No WSGI request: a script or a test working in a request context of its own.
    with app.test_request_context("/report", environ_base={"REMOTE_ADDR": "198.51.100.4"}):
        sentry_feedback.set_user({"id": "script"})
        sentry_feedback.capture_feedback("from a pushed context")
    with app.test_request_context("/report", environ_base={"REMOTE_ADDR": "unix:/run/app.sock"}):
        sentry_feedback.capture_feedback("from a unix socket")
    _, feedback = stored(sentry_receiver)
    users = {item.message: item.user for item in feedback}
    assert users == {
        "from a pushed context": {"id": "script", "ip_address": "198.51.100.4"},
        "from a unix socket": {"id": "script"},  # no address that is not an IP address
    }


@pytest.mark.parametrize("remote_addr", ["unix:/run/app.sock", "", "203.0.113.300", "x" * 100])
def test_an_unusable_client_address_is_left_out(
    sentry_init: Init, sentry_receiver: LocalReceiver, remote_addr: str
) -> None:
    """A server on a Unix socket (or a broken proxy) gives no IP address: the event has none, and stays valid."""
    sentry_init(integrations=[FlaskIntegration()], send_default_pii=True)
    app = flask.Flask(__name__)

    @app.get("/feedback")
    def feedback_view() -> str:
        return sentry_feedback.capture_feedback("hello") or "dropped"

    answer = app.test_client().get("/feedback", environ_base={"REMOTE_ADDR": remote_addr})
    _, (feedback,) = stored(sentry_receiver)
    assert answer.text == feedback.event_id
    assert feedback.user is None
    assert feedback.data["transaction"] == "/feedback"
