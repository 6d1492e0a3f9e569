"""SentryWsgiMiddleware around plain WSGI applications, called directly as a server would."""

from __future__ import annotations

import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback._web import capture_unhandled
from sentry_feedback.server import LocalReceiver
from sentry_feedback.wsgi import SentryWsgiMiddleware, set_transaction_name

from .direct import call_wsgi, environ, stored

TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT_SPAN = "b0e6f15b45c36b12"
Init = Callable[..., sentry_feedback.Client]


def feedback_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Sets the user from the query string, reads the body, captures a feedback."""
    user = urllib.parse.parse_qs(environ["QUERY_STRING"]).get("user", ["anonymous"])[0]
    sentry_feedback.set_user({"id": user})
    sentry_feedback.set_tag("user_tag", user)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    event_id = sentry_feedback.capture_feedback(f"feedback from {user}")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [(event_id or "dropped").encode()]


def failing_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    sentry_feedback.set_user({"id": "failing"})
    raise ZeroDivisionError("division by zero")


def error_pages(app: Any) -> Any:
    """An error-handling middleware around the SDK's: renders the id and trace of the error."""

    def handle(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except Exception:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            return [f"{sentry_feedback.last_event_id()} {sentry_feedback.get_traceparent()}".encode()]

    return handle


def test_request_data_without_pii(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    app = SentryWsgiMiddleware(feedback_app)
    env = environ(
        "/cart/items",
        method="POST",
        query="user=42&token=abc&page=2",
        body=b'{"card": "4111"}',
        CONTENT_TYPE="application/json",
        HTTP_AUTHORIZATION="Bearer secret-token",
        HTTP_PROXY_AUTHORIZATION="Basic cHJveHk6cHc=",
        HTTP_COOKIE="sessionid=abc; theme=dark",
        HTTP_X_API_KEY="key-123",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        HTTP_X_CUSTOM_SECRET="s3cr3t",
        HTTP_ACCEPT="text/html",
        HTTP_USER_AGENT="pytest",
    )
    status, _ = call_wsgi(app, env)
    assert status == "200 OK"

    _, (feedback,) = stored(sentry_receiver)
    request = feedback.data["request"]
    assert request["method"] == "POST"
    assert request["url"] == "http://127.0.0.1/cart/items"
    assert request["query_string"] == "user=42&token=[Filtered]&page=2"
    headers = dict(request["headers"])
    for name in ("Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Forwarded-For", "X-Custom-Secret"):
        assert headers[name] == "[Filtered]", name
    assert headers["Accept"] == "text/html"
    assert headers["User-Agent"] == "pytest"
    assert headers["Content-Type"] == "application/json"
    # Without send_default_pii: no cookies, no body, no IP address.
    assert not {"cookies", "data", "env"} & set(request)
    assert feedback.user == {"id": "42"}
    assert feedback.data["transaction"] == "/cart/items"
    assert feedback.data["transaction_info"] == {"source": "url"}


def test_request_data_with_pii(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(send_default_pii=True)
    env = environ(
        "/profile",
        method="POST",
        query="user=7",
        body=b"name=Jane&tags=a&tags=b",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        HTTP_COOKIE="sessionid=abc; theme=dark",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1",
        HTTP_AUTHORIZATION="Bearer secret-token",
    )
    call_wsgi(SentryWsgiMiddleware(feedback_app), env)
    call_wsgi(
        SentryWsgiMiddleware(feedback_app, use_x_forwarded_for=True),
        environ("/", query="user=8", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1"),
    )

    _, (first, second) = stored(sentry_receiver)
    request = first.data["request"]
    assert request["data"] == {"name": "Jane", "tags": ["a", "b"]}
    assert dict(request["cookies"]) == {"sessionid": "[Filtered]", "theme": "[Filtered]"}  # names only, by the scrubber
    assert request["env"] == {"REMOTE_ADDR": "192.0.2.10"}
    headers = dict(request["headers"])
    assert headers["X-Forwarded-For"] == "203.0.113.9, 10.0.0.1"  # PII headers are sent with send_default_pii
    assert headers["Authorization"] == headers["Cookie"] == "[Filtered]"  # credentials never are
    assert first.user == {"id": "7", "ip_address": "192.0.2.10"}
    assert second.user == {"id": "8", "ip_address": "203.0.113.9"}  # use_x_forwarded_for


@pytest.mark.parametrize(
    ("body", "content_type", "read"),
    [
        (b'{"a": 1}', "text/plain", True),  # neither a form nor JSON
        (b'{"a": "' + b"x" * 20_000 + b'"}', "application/json", True),  # too large
        (b'{"a": 1}', "application/json", False),  # the application did not read it
    ],
    ids=["not-form-or-json", "too-large", "unread"],
)
def test_body_left_out(
    sentry_init: Init, sentry_receiver: LocalReceiver, body: bytes, content_type: str, read: bool
) -> None:
    sentry_init(send_default_pii=True)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if read:
            assert environ["wsgi.input"].read() == body  # the application reads exactly what was sent
        sentry_feedback.capture_feedback("about the body")
        start_response("200 OK", [])
        return [b""]

    call_wsgi(SentryWsgiMiddleware(app), environ("/", method="POST", body=body, CONTENT_TYPE=content_type))
    _, (feedback,) = stored(sentry_receiver)
    assert "data" not in feedback.data["request"]


def test_body_read_in_lines_and_chunks(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(send_default_pii=True)
    body = b'{"lines":\n["a",\n"b"]}'

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        assert stream.readline() + stream.read(3) + b"".join(stream) == body
        sentry_feedback.capture_feedback("about the body")
        start_response("200 OK", [])
        return [b""]

    call_wsgi(SentryWsgiMiddleware(app), environ("/", method="POST", body=body, CONTENT_TYPE="application/json"))
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.data["request"]["data"] == {"lines": ["a", "b"]}


def test_concurrent_requests_keep_their_own_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    both_set = threading.Barrier(2, timeout=10)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        user = environ["QUERY_STRING"]
        sentry_feedback.set_user({"id": user})
        sentry_feedback.set_tag("request_user", user)
        both_set.wait()  # each request has set its user before either captures
        sentry_feedback.capture_feedback(f"feedback from {user}")
        try:
            raise ValueError(f"error of {user}")
        except ValueError:
            sentry_feedback.capture_exception()
        start_response("200 OK", [])
        return [b""]

    middleware = SentryWsgiMiddleware(app)
    threads = [threading.Thread(target=call_wsgi, args=(middleware, environ("/", query=user))) for user in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events, feedback = stored(sentry_receiver)
    assert sorted((f.message, f.user["id"], f.tags["request_user"]) for f in feedback if f.user) == [
        ("feedback from A", "A", "A"),
        ("feedback from B", "B", "B"),
    ]
    assert sorted((e.message, e.data["user"]["id"]) for e in events) == [
        ("ValueError: error of A", "A"),
        ("ValueError: error of B", "B"),
    ]
    assert sentry_feedback.get_isolation_scope().user is None  # nothing reached the process's scope


def test_unhandled_exception_captured_once_and_raised_unchanged(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init()
    with pytest.raises(ZeroDivisionError) as raised:
        call_wsgi(SentryWsgiMiddleware(SentryWsgiMiddleware(failing_app)), environ("/checkout"))
    assert str(raised.value) == "division by zero"
    assert raised.traceback[-1].name == "failing_app"  # the application's traceback, untouched

    # The server logs it (logging integration): the dedupe integration drops that second report.
    sentry_feedback.get_client().capture_exception(raised.value, mechanism_type="logging")
    (event,), _ = stored(sentry_receiver)
    (exception,) = event.data["exception"]["values"]
    assert exception["mechanism"]["type"] == "wsgi"
    assert exception["mechanism"]["handled"] is False
    assert event.data["user"] == {"id": "failing"}
    assert event.data["request"]["url"] == "http://127.0.0.1/checkout"
    assert event.data["transaction"] == "/checkout"


def test_exception_captured_in_the_application_is_not_reported_again(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            raise KeyError("cart")
        except KeyError:
            sentry_feedback.capture_exception()  # marked by the dedupe integration
            raise

    with pytest.raises(KeyError):
        call_wsgi(SentryWsgiMiddleware(app), environ())
    (event,), _ = stored(sentry_receiver)
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "generic"


def test_exception_captured_by_a_framework_integration_is_not_reported_again(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init(default_integrations=False)  # no dedupe: the integration's mark is enough

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            raise KeyError("cart")
        except KeyError as exc:
            capture_unhandled(exc, "framework")  # what a framework integration does
            raise

    with pytest.raises(KeyError):
        call_wsgi(SentryWsgiMiddleware(app), environ())
    (event,), _ = stored(sentry_receiver)
    assert event.data["exception"]["values"][0]["mechanism"] == {
        "type": "framework",
        "handled": False,
        "exception_id": 0,
    }


def test_last_event_id_and_trace_in_an_outer_error_page(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    app = error_pages(SentryWsgiMiddleware(failing_app))
    status, page = call_wsgi(app, environ("/pay", HTTP_SENTRY_TRACE=f"{TRACE_ID}-{PARENT_SPAN}-1"))
    assert status == "500 Internal Server Error"
    event_id, traceparent = page.decode().split()
    assert traceparent.startswith(f"{TRACE_ID}-")
    assert sentry_feedback.last_event_id() == event_id  # the server's own code, after the request, too

    def last_event_id_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [f"{sentry_feedback.last_event_id()} {sentry_feedback.get_isolation_scope().user}".encode()]

    # The next request starts clean, and puts the scopes around the middleware back.
    assert call_wsgi(SentryWsgiMiddleware(last_event_id_app), environ())[1] == b"None None"
    assert sentry_feedback.last_event_id() is None
    (event,), _ = stored(sentry_receiver)
    assert event.event_id == event_id
    assert event.data["contexts"]["trace"]["trace_id"] == TRACE_ID


def test_request_in_a_fork_of_a_failed_requests_scope_describes_itself(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init()
    with pytest.raises(ZeroDivisionError):
        call_wsgi(SentryWsgiMiddleware(failing_app), environ("/failed"))
    with sentry_feedback.with_isolation_scope():  # forks the scope the failed request left for its error handler
        call_wsgi(SentryWsgiMiddleware(feedback_app), environ("/second", query="user=second"))
    assert sentry_feedback.get_isolation_scope().user == {"id": "failing"}  # the block ended: the kept scope again
    call_wsgi(SentryWsgiMiddleware(feedback_app), environ("/third", query="user=third"))
    assert sentry_feedback.get_isolation_scope().user is None  # the next request put the process's scope back
    _, (second, third) = stored(sentry_receiver)
    assert second.data["request"]["url"] == "http://127.0.0.1/second"
    assert second.data["transaction"] == "/second"
    assert second.user == {"id": "second"}
    assert third.user == {"id": "third"}


def test_trace_continued_from_headers(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    baggage = f"sentry-trace_id={TRACE_ID},sentry-public_key=upstream,sentry-sample_rand=0.25,other=1"
    app = SentryWsgiMiddleware(feedback_app)
    call_wsgi(app, environ("/", HTTP_SENTRY_TRACE=f"{TRACE_ID}-{PARENT_SPAN}-1", HTTP_BAGGAGE=baggage))
    w3c_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    call_wsgi(app, environ("/", HTTP_TRACEPARENT=f"00-{w3c_trace}-00f067aa0ba902b7-01"))
    call_wsgi(app, environ("/", HTTP_SENTRY_TRACE="not-a-trace"))
    call_wsgi(app, environ("/"))

    _, feedback = stored(sentry_receiver)
    contexts = [f.data["contexts"]["trace"] for f in feedback]
    assert contexts[0]["trace_id"] == TRACE_ID
    assert contexts[0]["parent_span_id"] == PARENT_SPAN
    assert feedback[0].trace_id == TRACE_ID
    assert contexts[1]["trace_id"] == w3c_trace
    assert len({contexts[2]["trace_id"], contexts[3]["trace_id"], TRACE_ID, w3c_trace}) == 4  # new traces


def test_error_and_feedback_of_a_request_share_its_trace(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            {}["missing"]
        except KeyError:
            error_id = sentry_feedback.capture_exception()
        sentry_feedback.capture_feedback("It broke", associated_event_id=error_id)
        start_response("200 OK", [])
        return [b""]

    call_wsgi(SentryWsgiMiddleware(app), environ(HTTP_SENTRY_TRACE=f"{TRACE_ID}-{PARENT_SPAN}"))
    (event,), (feedback,) = stored(sentry_receiver)
    assert feedback.associated_event_id == event.event_id
    assert event.data["contexts"]["trace"]["trace_id"] == feedback.trace_id == TRACE_ID


def test_transaction_names(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/named":
            set_transaction_name("checkout.pay", source="view")
        sentry_feedback.capture_feedback(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b""]

    app_with_sentry = SentryWsgiMiddleware(app)
    call_wsgi(app_with_sentry, environ("/users/42/orders"))
    call_wsgi(app_with_sentry, environ("/named"))
    set_transaction_name("outside a request")  # ignored
    _, feedback = stored(sentry_receiver)
    assert [(f.data["transaction"], f.data["transaction_info"]["source"]) for f in feedback] == [
        ("/users/42/orders", "url"),
        ("checkout.pay", "view"),
    ]


def test_flask_route_names_the_transaction(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    flask = pytest.importorskip("flask")
    sentry_init()
    app = flask.Flask(__name__)

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> str:
        return sentry_feedback.capture_feedback(f"about user {user_id}") or ""

    app.wsgi_app = SentryWsgiMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    assert app.test_client().get("/users/42").status_code == 200
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.data["transaction"] == "/users/<int:user_id>"
    assert feedback.data["transaction_info"] == {"source": "route"}
    assert feedback.data["request"]["url"] == "http://localhost/users/42"


def test_flask_error_handler_reads_last_event_id(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    flask = pytest.importorskip("flask")
    sentry_init()
    app = flask.Flask(__name__)

    @app.get("/pay")
    def pay() -> str:
        sentry_feedback.set_user({"id": "payer"})
        raise ZeroDivisionError("division by zero")

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        # Flask logged the exception just before: the logging integration reported it.
        return f"error {sentry_feedback.last_event_id()}", 500

    app.wsgi_app = SentryWsgiMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    answer = app.test_client().get("/pay")
    (event,), _ = stored(sentry_receiver)
    assert (answer.status_code, answer.text) == (500, f"error {event.event_id}")
    assert event.data["user"] == {"id": "payer"}
    assert event.data["request"]["url"] == "http://localhost/pay"
    assert event.data["transaction"] == "/pay"


def test_streamed_response_keeps_the_request_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    outside: list[object] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        sentry_feedback.set_user({"id": "streamer"})
        start_response("200 OK", [])
        yield b"first "
        sentry_feedback.capture_feedback("while streaming")
        yield b"second"

    response = SentryWsgiMiddleware(app)(environ("/stream"), lambda *args: None)
    chunks = []
    for chunk in response:
        chunks.append(chunk)
        outside.append(sentry_feedback.get_isolation_scope().user)  # the server's code, between chunks
    response.close()  # type: ignore[attr-defined]
    assert chunks == [b"first ", b"second"]
    assert outside == [None, None]
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.user == {"id": "streamer"}
    assert feedback.data["request"]["url"] == "http://127.0.0.1/stream"


class ClosingResponse:
    """A response whose iteration or ``close`` fails (PEP 3333 calls ``close`` in any case)."""

    def __init__(self, fail_in: str) -> None:
        self.fail_in = fail_in
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"partial"
        if self.fail_in == "iteration":
            raise ConnectionError("upstream went away mid-stream")

    def close(self) -> None:
        self.closed = True
        sentry_feedback.capture_message(f"closing, user {sentry_feedback.get_isolation_scope().user}")
        if self.fail_in == "close":
            raise OSError("could not release the file")


@pytest.mark.parametrize("fail_in", ["iteration", "close"])
def test_exception_while_iterating_or_closing(sentry_init: Init, sentry_receiver: LocalReceiver, fail_in: str) -> None:
    sentry_init()
    response = ClosingResponse(fail_in)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        sentry_feedback.set_user({"id": "closer"})
        start_response("200 OK", [])
        return response

    expected = ConnectionError if fail_in == "iteration" else OSError
    with pytest.raises(expected):
        call_wsgi(SentryWsgiMiddleware(app), environ("/download"))
    assert response.closed
    events, _ = stored(sentry_receiver)
    errors = [e for e in events if "exception" in e.data]
    (error,) = errors
    assert error.data["exception"]["values"][-1]["mechanism"] == {"type": "wsgi", "handled": False, "exception_id": 0}
    assert error.data["user"] == {"id": "closer"}
    closing = [e for e in events if "exception" not in e.data]
    assert [e.message for e in closing] == ["closing, user {'id': 'closer'}"]


def test_file_wrapper_is_passed_through(sentry_init: Init) -> None:
    sentry_init()

    class FileWrapper:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self) -> Iterator[bytes]:
            yield self.data

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](b"file contents")  # type: ignore[no-any-return]

    response = SentryWsgiMiddleware(app)(environ(**{"wsgi.file_wrapper": FileWrapper}), lambda *args: None)
    assert isinstance(response, FileWrapper)  # the server can still send the file its fast way


def test_control_flow_exceptions_are_not_captured(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise SystemExit(0)  # a worker told to stop

    with pytest.raises(SystemExit):
        call_wsgi(SentryWsgiMiddleware(app), environ())
    events, _ = stored(sentry_receiver)
    assert events == []
