"""DjangoIntegration with a real Django project, through Django's test client and its WSGI handler."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client
from django.test.utils import override_settings

import sentry_feedback
from integrations_web.direct import call_wsgi, environ, stored
from sentry_feedback.integrations.django import DjangoIntegration
from sentry_feedback.integrations.logging import LoggingIntegration
from sentry_feedback.server import LocalReceiver
from sentry_feedback.wsgi import SentryWsgiMiddleware

from . import views

Init = Callable[..., sentry_feedback.Client]


def browser() -> Client:
    """A test client that answers with the 500 page instead of raising the view's exception."""
    return Client(raise_request_exception=False)


# -- unhandled errors ------------------------------------------------------------------------------


def test_error_captured_once_with_mechanism_django(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    answer = browser().get("/orders/7/pay?coupon=SUMMER")
    (event,), feedback = stored(sentry_receiver)
    assert feedback == []
    # handler500 renders the id of the error of this request.
    assert (answer.status_code, answer.content.decode()) == (500, f"error {event.event_id}")
    assert views.error_pages[-1] == event.event_id
    (value,) = event.data["exception"]["values"]
    assert value["type"] == "ZeroDivisionError"
    assert value["mechanism"] == {"type": "django", "handled": False, "exception_id": 0}
    assert event.data["transaction"] == "/orders/<int:order_id>/pay"
    assert event.data["transaction_info"] == {"source": "route"}
    assert event.data["user"] == {"id": "payer"}
    assert event.data["request"]["method"] == "GET"
    assert event.data["request"]["url"] == "http://testserver/orders/7/pay"
    assert event.data["request"]["query_string"] == "coupon=SUMMER"
    assert "django" in event.data["sdk"]["integrations"]
    assert sentry_feedback.get_isolation_scope().user is None  # nothing leaked into the test's scope


def test_default_test_client_raises_after_handler500(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    with pytest.raises(ZeroDivisionError):
        Client().get("/orders/3/pay")
    (event,), _ = stored(sentry_receiver)
    assert views.error_pages[-1] == event.event_id
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "django"


def test_error_captured_once_without_dedupe(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    """Django logs "Internal Server Error: /path" after the signal: the logging integration drops that record."""
    sentry_init(default_integrations=False, integrations=[LoggingIntegration(), DjangoIntegration()])
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("django.request").addHandler(handler)
    try:
        answer = browser().get("/orders/1/pay")
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    (event,), _ = stored(sentry_receiver)
    assert [record.getMessage() for record in records] == ["Internal Server Error: /orders/1/pay"]  # it was logged
    assert answer.content.decode() == f"error {event.event_id}"
    assert event.data["sdk"]["integrations"] == ["django", "logging"]
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "django"


@pytest.mark.parametrize("wrapped_by_hand", [False, True])
def test_propagated_error_not_captured_again_by_wsgi(
    sentry_init: Init, sentry_receiver: LocalReceiver, wrapped_by_hand: bool
) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    with override_settings(DEBUG_PROPAGATE_EXCEPTIONS=True):  # Django raises the exception on to the server
        app: Any = WSGIHandler()
        if wrapped_by_hand:
            app = SentryWsgiMiddleware(app)
        with pytest.raises(ZeroDivisionError):
            call_wsgi(app, environ("/orders/2/pay"))
    (event,), _ = stored(sentry_receiver)
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "django"
    assert event.data["request"]["url"] == "http://127.0.0.1/orders/2/pay"


@pytest.mark.parametrize("wrapped_by_hand", [False, True])
def test_wsgi_handler_runs_in_the_middleware(
    sentry_init: Init, sentry_receiver: LocalReceiver, wrapped_by_hand: bool
) -> None:
    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    app: Any = WSGIHandler()
    if wrapped_by_hand:
        app = SentryWsgiMiddleware(app)
    status, body = call_wsgi(app, environ("/orders/5/pay", query="a=1", HTTP_X_CUSTOM="yes"))
    (event,), _ = stored(sentry_receiver)
    assert (status, body.decode()) == ("500 Internal Server Error", f"error {event.event_id}")
    assert event.data["exception"]["values"][0]["mechanism"] == {"type": "django", "handled": False, "exception_id": 0}
    assert event.data["transaction"] == "/orders/<int:order_id>/pay"
    assert event.data["request"]["url"] == "http://127.0.0.1/orders/5/pay"
    assert event.data["request"]["query_string"] == "a=1"
    assert event.data["request"]["headers"]["X-Custom"] == "yes"
    assert event.data["user"] == {"id": "payer", "ip_address": "192.0.2.10"}


# -- feedback and request data ----------------------------------------------------------------------------


def test_feedback_in_a_view_has_request_data_and_links_to_the_error(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    client = browser()
    error_id = client.get("/orders/7/pay").content.decode().removeprefix("error ")
    answer = client.get(
        f"/users/42/feedback?error={error_id}", headers={"Authorization": "Bearer secret", "X-Custom": "yes"}
    )
    (error,), (feedback,) = stored(sentry_receiver)
    assert error.event_id == error_id
    assert answer.content.decode() == feedback.event_id
    assert feedback.associated_event_id == error_id
    request = feedback.data["request"]
    assert request["method"] == "GET"
    assert request["url"] == "http://testserver/users/42/feedback"
    assert request["query_string"] == f"error={error_id}"
    assert request["headers"]["Authorization"] == "[Filtered]"
    assert request["headers"]["X-Custom"] == "yes"
    assert "cookies" not in request
    assert feedback.data["transaction"] == "/users/<int:user_id>/feedback"
    assert feedback.data["transaction_info"] == {"source": "route"}
    assert feedback.user is None  # no user, no IP address without send_default_pii
    assert "django" in feedback.data["sdk"]["integrations"]


def test_form_body_with_send_default_pii(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    form = "comment=the+pay+button+does+nothing"
    browser().post("/form", form, content_type="application/x-www-form-urlencoded")
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.data["request"]["data"] == {"comment": "the pay button does nothing"}


# -- transaction names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "source"),
    [
        ("/users/42/feedback", "/users/<int:user_id>/feedback", "route"),
        ("/api/v1/archive/2024/17/", "/api/v1/archive/<year>/<arg1>/", "route"),  # include() + re_path
        ("/legacy/summer-sale", "/legacy/<slug>/", "route"),
        ("/cbv/3", "/cbv/<int:pk>", "route"),
        ("/named", "checkout flow", "custom"),  # set_transaction_name() in the view wins
        ("/no/such/page", "/no/such/page", "url"),  # handler404 captures a feedback
    ],
)
def test_url_transaction_style(
    sentry_init: Init, sentry_receiver: LocalReceiver, path: str, name: str, source: str
) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    browser().get(path)
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.data["transaction"] == name
    assert feedback.data["transaction_info"] == {"source": source}


def test_nested_include_names_the_error(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    browser().get("/api/v1/orders/9/pay")
    (event,), _ = stored(sentry_receiver)
    assert event.data["transaction"] == "/api/v1/orders/<int:order_id>/pay"
    assert event.data["transaction_info"] == {"source": "route"}


@pytest.mark.parametrize(
    ("path", "name", "source"),
    [
        ("/users/42/feedback", "integrations_django.views.feedback", "component"),
        ("/cbv/3", "integrations_django.views.OrderView", "component"),
        ("/named", "checkout flow", "custom"),
        ("/no/such/page", "/no/such/page", "url"),
    ],
)
def test_function_name_transaction_style(
    sentry_init: Init, sentry_receiver: LocalReceiver, path: str, name: str, source: str
) -> None:
    sentry_init(integrations=[DjangoIntegration(transaction_style="function_name")])
    browser().get(path)
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.data["transaction"] == name
    assert feedback.data["transaction_info"] == {"source": source}


@pytest.mark.parametrize(
    ("regex", "readable"),
    [
        (r"^articles/(?P<year>[0-9]{4})/(\d+)/$", "articles/<year>/<arg1>/"),
        (r"^blog/?$", "blog/"),
        (r"^(?:page-(?P<page>\d+)/)?$", "page-<page>/"),
        (r"^files/(?P<path>.*)\Z", "files/<path>"),
        (r"^a\.b/(?=x)x[)(]/", "a.b/x[)(]/"),
        (r"^(?P<slug>[-\w]+)/(v1|v2)/(?i)$", "<slug>/<arg1>/"),
        (r"^broken/(?P<open>[a-z]+", "broken/<open>"),
    ],
)
def test_readable_regex(regex: str, readable: str) -> None:
    from sentry_feedback.integrations.django._routes import readable_regex

    assert readable_regex(regex, [0]) == readable


# -- the user -----------------------------------------------------------------------------------------------


@pytest.fixture
def logged_in(database: None) -> Client:
    from django.contrib.auth.models import User

    user = User.objects.filter(username="ann").first() or User.objects.create_user("ann", "ann@example.com", "pw")
    client = browser()
    client.force_login(user)
    return client


def test_user_from_request_user_with_send_default_pii(
    sentry_init: Init, sentry_receiver: LocalReceiver, logged_in: Client
) -> None:
    from django.contrib.auth.models import User

    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    logged_in.get("/whoami")
    logged_in.get("/whoami?set=customer-7")  # the application's user wins
    logged_in.get("/orders/1/pay")  # the error's own user (set_user) wins too
    (error,), (mine, theirs) = stored(sentry_receiver)
    ann = User.objects.get(username="ann")
    assert mine.user == {"id": str(ann.pk), "username": "ann", "email": "ann@example.com", "ip_address": "127.0.0.1"}
    assert theirs.user == {"id": "customer-7", "ip_address": "127.0.0.1"}
    assert error.data["user"] == {"id": "payer", "ip_address": "127.0.0.1"}
    assert "Cookie" not in mine.data["request"]["headers"] or mine.data["request"]["headers"]["Cookie"] == "[Filtered]"
    assert "sessionid" in mine.data["request"]["cookies"]


def test_no_user_without_send_default_pii(sentry_init: Init, sentry_receiver: LocalReceiver, logged_in: Client) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    logged_in.get("/whoami")
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.user is None
    assert "cookies" not in feedback.data["request"]


def test_anonymous_user_gives_the_address_only(
    sentry_init: Init, sentry_receiver: LocalReceiver, database: None
) -> None:
    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    browser().get("/whoami", REMOTE_ADDR="203.0.113.7")
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.user == {"ip_address": "203.0.113.7"}


def test_request_user_not_loaded_without_django_contrib_auth(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    views.user_loads.clear()
    browser().get("/replace-user")  # django.contrib.auth installed: request.user is read
    assert views.user_loads == ["/replace-user"]
    views.user_loads.clear()
    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.sessions"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    ):
        browser().get("/replace-user")
    assert views.user_loads == []
    _, feedback = stored(sentry_receiver)
    assert [item.user for item in feedback] == [{"ip_address": "127.0.0.1"}] * 2


def test_failing_request_user_keeps_the_event(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    answer = browser().get("/broken-user")
    _, (feedback,) = stored(sentry_receiver)
    assert answer.content.decode() == feedback.event_id
    assert feedback.user == {"ip_address": "127.0.0.1"}


# -- scopes ---------------------------------------------------------------------------------------------


def test_streaming_response_keeps_the_request_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    answer = browser().get("/stream?page=1")
    content = b"".join(answer.streaming_content).decode()  # type: ignore[arg-type]
    _, (feedback,) = stored(sentry_receiver)
    assert content == f"first {feedback.event_id}"
    assert feedback.user == {"id": "streamer"}
    assert feedback.data["transaction"] == "/stream"
    assert feedback.data["request"]["query_string"] == "page=1"
    assert sentry_feedback.get_isolation_scope().user is None


def test_streaming_response_through_the_wsgi_handler(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    status, body = call_wsgi(WSGIHandler(), environ("/stream"))
    _, (feedback,) = stored(sentry_receiver)
    assert (status, body.decode()) == ("200 OK", f"first {feedback.event_id}")
    assert feedback.user == {"id": "streamer"}
    assert feedback.data["transaction"] == "/stream"
    assert feedback.data["request"]["url"] == "http://127.0.0.1/stream"


def test_scopes_of_concurrent_requests_do_not_mix(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    views.together_barrier = threading.Barrier(2)
    answers: dict[str, str] = {}

    def request(user: str) -> None:
        answers[user] = browser().get(f"/together/{user}").content.decode()

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
        assert item.tags["user_tag"] == user
        assert item.data["transaction"] == "/together/<str:user>"
    assert feedback[0].trace_id != feedback[1].trace_id  # a trace per request
    assert sentry_feedback.get_isolation_scope().user is None


def test_failures_of_the_integration_are_logged_not_raised(
    sentry_init: Init, sentry_receiver: LocalReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sentry_feedback.integrations import django as integration_module

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("broken on purpose")

    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    monkeypatch.setattr(integration_module, "route_of", broken)
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        named = browser().get("/users/1/feedback")
        monkeypatch.setattr(integration_module, "from_wsgi_environ", broken)  # no scope for the request at all
        unscoped = browser().get("/users/2/feedback")
        failed = browser().get("/orders/2/pay")
    (error,), (first, second) = stored(sentry_receiver)
    assert (named.status_code, named.content.decode()) == (200, first.event_id)
    assert first.data["transaction"] == "/users/1/feedback"  # the path, since the route could not be read
    assert (unscoped.status_code, unscoped.content.decode()) == (200, second.event_id)
    assert "request" not in second.data
    assert (failed.status_code, failed.content.decode()) == (500, f"error {error.event_id}")
    assert error.data["exception"]["values"][0]["mechanism"]["type"] == "django"
    messages = [record.getMessage() for record in caplog.records if record.name == "sentry_feedback"]
    assert "could not name the transaction of a Django request" in messages
    assert "could not set up the scope of a Django request; the request runs without it" in messages


# -- loggers, clients, options ------------------------------------------------------------------------------


def test_django_server_log_records_are_ignored(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    browser().get("/logged")
    events, (feedback,) = stored(sentry_receiver)
    assert events == []  # the dev server's "500" line is not an error event
    crumbs = feedback.data.get("breadcrumbs", {}).get("values", [])
    assert [crumb["category"] for crumb in crumbs] == ["shop"]


def test_integration_is_off_for_a_client_without_it(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    sentry_init(default_integrations=False)  # a new client, without the django integration (hooks stay)
    answer = browser().get("/users/3/feedback")
    with pytest.raises(ZeroDivisionError):
        Client().get("/orders/3/pay")
    events, (feedback,) = stored(sentry_receiver)
    assert events == []
    assert answer.content.decode() == feedback.event_id
    assert "request" not in feedback.data and "transaction" not in feedback.data


def test_importing_the_sdk_does_not_import_django() -> None:
    code = (
        "import sys, sentry_feedback, sentry_feedback.integrations.django\n"
        "from sentry_feedback.integrations.django import DjangoIntegration\n"
        "DjangoIntegration(transaction_style='function_name')\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if m.startswith('django'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"transaction_style": "path"}, ValueError),
        ({"transaction_style": "endpoint"}, ValueError),
        ({"transaction_style": None}, ValueError),
        ({"transaction_style": ["url"]}, ValueError),
        ({"use_x_forwarded_for": 1}, TypeError),
        ({"use_x_forwarded_for": "yes"}, TypeError),
        ({"max_request_body_size": -1}, ValueError),
        ({"max_request_body_size": True}, TypeError),
        ({"max_request_body_size": "10"}, TypeError),
        ({"max_request_body_size": 1.5}, TypeError),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        DjangoIntegration(**options)


# -- transactions and sessions -------------------------------------------------------------------------


def test_requests_are_transactions_and_sessions(sentry_init: Init) -> None:
    from sentry_feedback.testing import MockTransport

    transport = MockTransport()
    sentry_init(
        integrations=[DjangoIntegration()], transport=transport, traces_sample_rate=1.0, release="django-test@1"
    )
    assert browser().get("/users/5/feedback").status_code == 200
    assert browser().get("/orders/7/pay").status_code == 500
    sentry_feedback.flush(5)
    items = [item for envelope in transport.envelopes for item in envelope.items]
    transactions = [item.get_json() for item in items if item.type == "transaction"]
    assert [t["transaction"] for t in transactions] == ["/users/<int:user_id>/feedback", "/orders/<int:order_id>/pay"]
    assert [t["transaction_info"]["source"] for t in transactions] == ["route", "route"]
    assert [t["contexts"]["trace"]["status"] for t in transactions] == ["ok", "internal_error"]
    assert transactions[0]["contexts"]["trace"]["op"] == "http.server"
    # The feedback of the first request was sent from inside its transaction.
    (feedback,) = [item.get_json() for item in items if item.type == "feedback"]
    assert feedback["contexts"]["trace"]["span_id"] == transactions[0]["contexts"]["trace"]["span_id"]
    (sessions,) = [item.get_json() for item in items if item.type == "sessions"]
    counts: dict[str, int] = {}
    for aggregate in sessions["aggregates"]:
        for key, value in aggregate.items():
            if key != "started":
                counts[key] = counts.get(key, 0) + value
    assert counts == {"exited": 1, "crashed": 1}
