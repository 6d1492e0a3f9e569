"""The integrations API and the default integrations: logging, excepthook, threading, dedupe, contexts."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sentry_feedback as sf
from sentry_feedback.integrations import Integration
from sentry_feedback.integrations.excepthook import ThreadingIntegration
from sentry_feedback.integrations.logging import LoggingIntegration, ignore_logger, strip_ansi
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport

BASE = ["dedupe", "excepthook", "logging", "modules", "os", "runtime", "threading"]
#: The framework integrations enabled because the framework is installed (all are, in the test extra).
FRAMEWORKS = [name for name in ("django", "fastapi", "flask", "starlette") if importlib.util.find_spec(name)]
DEFAULTS = sorted(BASE + FRAMEWORKS)


class CountingIntegration(Integration):
    identifier: ClassVar[str] = "counting"
    setup_once_calls = 0

    def __init__(self) -> None:
        self.clients: list[sf.Client] = []

    def setup_once(self) -> None:
        type(self).setup_once_calls += 1

    def setup(self, client: sf.Client) -> None:
        self.clients.append(client)
        client.add_event_processor(lambda event, hint: {**event, "tags": {**event.get("tags", {}), "counted": "yes"}})


def test_default_integrations_listed_in_sdk_info() -> None:
    transport = MockTransport()
    client = sf.init(transport=transport)
    assert sorted(client.integrations) == DEFAULTS
    sf.capture_feedback("x")
    assert sf.flush(5)
    event = transport.feedback[0]
    assert event["sdk"]["integrations"] == DEFAULTS
    assert event["contexts"]["runtime"]["name"] and event["contexts"]["os"]["name"]
    assert "modules" not in event  # feedback stays small


def test_framework_integrations_are_enabled_when_the_framework_is_installed() -> None:
    from sentry_feedback.integrations.flask import FlaskIntegration

    assert "flask" in FRAMEWORKS  # the test extra installs it
    client = sf.init(transport=MockTransport())
    assert isinstance(client.get_integration(FlaskIntegration), FlaskIntegration)
    assert sorted(sf.init(transport=MockTransport(), auto_enabling_integrations=False).integrations) == BASE
    # A framework integration passed in ``integrations`` replaces the automatic one.
    mine = FlaskIntegration(transaction_style="endpoint")
    assert sf.init(transport=MockTransport(), integrations=[mine]).get_integration(FlaskIntegration) is mine


def test_auto_enabling_skips_frameworks_that_are_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentry_feedback import integrations

    monkeypatch.setattr(
        integrations,
        "AUTO_ENABLING",
        (("no_such_framework_here", "flask", "FlaskIntegration"), ("flask", "no_such_module", "Nope")),
    )
    assert sorted(sf.init(transport=MockTransport()).integrations) == BASE


@pytest.mark.parametrize("disabled", [LoggingIntegration, LoggingIntegration(), ThreadingIntegration])
def test_disabled_integrations_are_left_out(disabled: Any) -> None:
    client = sf.init(transport=MockTransport(), disabled_integrations=[disabled])
    assert disabled.identifier not in client.integrations
    assert len(client.integrations) == len(DEFAULTS) - 1
    # Even when passed in ``integrations`` too.
    client = sf.init(transport=MockTransport(), integrations=[LoggingIntegration()], disabled_integrations=[disabled])
    assert disabled.identifier not in client.integrations


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"disabled_integrations": [object()]}, "disabled_integrations"),
        ({"disabled_integrations": "logging"}, "disabled_integrations"),
        ({"disabled_integrations": [int]}, "disabled_integrations"),
        ({"auto_enabling_integrations": "yes"}, "auto_enabling_integrations"),
    ],
)
def test_bad_integration_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sf.init(transport=MockTransport(), **options)


def test_modules_on_error_events() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    sf.capture_message("m", level="error")
    assert sf.flush(5)
    assert "urllib3" in transport.events[0]["modules"]


def test_custom_integration_setup_once_and_per_client() -> None:
    first, second = CountingIntegration(), CountingIntegration()
    before = CountingIntegration.setup_once_calls
    c1 = sf.init(transport=MockTransport(), integrations=[first])
    transport = MockTransport()
    c2 = sf.init(transport=transport, integrations=[second], default_integrations=False)
    assert CountingIntegration.setup_once_calls - before <= 1  # once per process
    assert first.clients == [c1] and second.clients == [c2]
    assert sorted(c2.integrations) == ["counting"]
    assert c2.get_integration(CountingIntegration) is second
    assert c2.get_integration(LoggingIntegration) is None
    sf.capture_feedback("x")
    assert sf.flush(5)
    assert transport.feedback[0]["tags"]["counted"] == "yes"
    assert transport.feedback[0]["sdk"]["integrations"] == ["counting"]


def test_configured_instance_replaces_the_default() -> None:
    mine = LoggingIntegration(level=None, event_level=logging.WARNING)
    client = sf.init(transport=MockTransport(), integrations=[mine])
    assert client.get_integration(LoggingIntegration) is mine


def test_failing_integration_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Integration):
        identifier: ClassVar[str] = "broken"

        def setup(self, client: sf.Client) -> None:
            raise RuntimeError("nope")

    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        client = sf.init(transport=MockTransport(), integrations=[Broken()])
    assert "broken" not in client.integrations
    assert "could not set up the broken integration" in caplog.text


def test_disabled_client_sets_up_nothing() -> None:
    assert sf.init().integrations == {}


# -- logging ------------------------------------------------------------------------------------


def test_log_records_become_breadcrumbs_and_events() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    log = logging.getLogger("shop.checkout")
    log.setLevel(logging.DEBUG)
    log.debug("not a breadcrumb")
    log.info("cart has %d items", 3, extra={"cart_id": "c-1"})
    log.warning("slow payment provider")
    log.error("payment failed for %s", "order-7")
    assert sf.flush(5)
    (event,) = transport.events
    assert event["logentry"] == {
        "message": "payment failed for %s",
        "formatted": "payment failed for order-7",
        "params": ["order-7"],
    }
    assert event["logger"] == "shop.checkout" and event["level"] == "error"
    crumbs = event["breadcrumbs"]["values"]
    assert [c["message"] for c in crumbs] == ["cart has 3 items", "slow payment provider"]
    assert crumbs[0]["data"] == {"cart_id": "c-1"} and crumbs[0]["category"] == "shop.checkout"
    assert [c["message"] for c in sf.get_isolation_scope().breadcrumbs][-1] == "payment failed for order-7"


def test_ansi_colour_codes_are_stripped_from_breadcrumbs_and_events() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    log = logging.getLogger("devserver")
    log.warning("\x1b[33m\x1b[1m%s\x1b[0m \x1b[31m500\x1b[0m", "GET /pay")
    log.error("\x1b]0;title\x07failed: %s", "\x1b[1mboom\x1b[0m")
    assert sf.flush(5)
    (event,) = transport.events
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["GET /pay 500"]
    assert event["logentry"]["formatted"] == "failed: boom"
    assert event["logentry"]["message"] == "failed: %s"


@given(st.text(alphabet=st.characters(blacklist_characters="\x1b")), st.lists(st.integers(0, 107), max_size=4))
def test_strip_ansi_keeps_text_and_removes_colour_codes(text: str, codes: list[int]) -> None:
    assert strip_ansi(text) == text
    colour = "\x1b[" + ";".join(map(str, codes)) + "m"
    assert strip_ansi(colour + text + "\x1b[0m") == text
    assert "\x1b[" not in strip_ansi(colour + text + colour)


def test_logger_exception_becomes_an_exception_event() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("shop").exception("lookup failed")
    assert sf.flush(5)
    (event,) = transport.events
    value = event["exception"]["values"][-1]
    assert value["type"] == "KeyError"
    assert value["mechanism"] == {"type": "logging", "handled": True, "exception_id": 0}
    assert event["logentry"]["formatted"] == "lookup failed"


def test_opt_outs_and_own_logger_never_captured() -> None:
    transport = MockTransport()
    sf.init(transport=transport, debug=False)
    logging.getLogger("sentry_feedback").error("the SDK's own logger")
    logging.getLogger("sentry_feedback.worker").error("and its children")
    logging.getLogger("app").error("skipped", extra={"sentry_feedback_skip": True})
    ignore_logger("noisy.lib")
    logging.getLogger("noisy.lib.sub").error("ignored logger")
    assert sf.flush(5)
    assert transport.events == []


def test_levels_are_configurable() -> None:
    transport = MockTransport()
    sf.init(transport=transport, integrations=[LoggingIntegration(level=logging.ERROR, event_level=logging.WARNING)])
    logging.getLogger("app").warning("now an event")
    logging.getLogger("app").info("not a crumb")  # below the configured breadcrumb level
    assert sf.flush(5)
    assert [e["logentry"]["formatted"] for e in transport.events] == ["now an event"]
    assert sf.get_isolation_scope().breadcrumbs == []


def test_capture_then_log_same_exception_is_deduplicated() -> None:
    transport = MockTransport()
    client = sf.init(transport=transport)
    try:
        raise ValueError("once")
    except ValueError:
        sf.capture_exception()
        logging.getLogger("app").exception("logged too")
    assert sf.flush(5)
    assert len(transport.events) == 1
    assert client.client_reports.totals() == {("event_processor", "error"): 1}


def test_before_breadcrumb_changes_and_drops() -> None:
    def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if "secret" in crumb.get("message", ""):
            return None
        record = hint.get("log_record")
        return {**crumb, "data": {"from_log": record is not None}}

    sf.init(transport=MockTransport(), before_breadcrumb=before_breadcrumb)
    sf.add_breadcrumb(message="hello")
    sf.add_breadcrumb(message="a secret")
    logging.getLogger("app").warning("logged")
    with sf.with_scope() as scope:
        scope.add_breadcrumb(message="scope secret")
        scope.add_breadcrumb(message="scope crumb")
        assert [c["message"] for c in scope.breadcrumbs] == ["scope crumb"]
    crumbs = sf.get_isolation_scope().breadcrumbs
    assert [(c["message"], c["data"]["from_log"]) for c in crumbs] == [("hello", False), ("logged", True)]


# -- unhandled exceptions ---------------------------------------------------------------------


def test_uncaught_exception_in_a_subprocess_is_reported_and_flushed(sentry_receiver: LocalReceiver) -> None:
    script = textwrap.dedent(
        f"""
        import sentry_feedback
        sentry_feedback.init({sentry_receiver.dsn!r}, shutdown_timeout=10)

        def main():
            secret_order = "order-1"
            raise RuntimeError("crash at startup")

        main()
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "RuntimeError: crash at startup" in result.stderr  # the usual traceback still prints
    (event,) = sentry_receiver.store.list_events()
    value = event.data["exception"]["values"][-1]
    assert value["type"] == "RuntimeError"
    assert value["mechanism"]["type"] == "excepthook" and value["mechanism"]["handled"] is False
    assert value["stacktrace"]["frames"][-1]["function"] == "main"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_exception_ending_a_thread_is_reported() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    # pytest swaps threading.excepthook around each test; wrap the hook in place for this one.
    ThreadingIntegration().setup_once()

    def work() -> None:
        raise LookupError("thread died")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert sf.flush(5)
    (event,) = transport.events
    value = event["exception"]["values"][-1]
    assert value["type"] == "LookupError"
    assert value["mechanism"]["type"] == "threading" and value["mechanism"]["handled"] is False


def test_records_logged_on_the_sdk_worker_thread_are_ignored() -> None:
    transport = MockTransport(lambda envelope: logging.getLogger("urllib3.connectionpool").error("pool is full"))
    sf.init(transport=transport)
    sf.capture_feedback("x")
    assert sf.flush(5)
    sf.capture_feedback("y")
    assert sf.flush(5)
    assert transport.events == []
    assert sf.get_isolation_scope().breadcrumbs == []


# -- frameworks patched when they are imported ----------------------------------------------------------


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_init_does_not_import_the_frameworks_it_enables() -> None:
    out = _run(
        """
        import sys
        import sentry_feedback as sf
        from sentry_feedback.testing import MockTransport
        client = sf.init(transport=MockTransport())
        print(sorted(name for name in ("flask", "django", "starlette", "fastapi") if name in client.integrations))
        print(sorted(name for name in ("flask", "django", "starlette", "fastapi") if name in sys.modules))
        """
    )
    assert out.splitlines() == [str(sorted(FRAMEWORKS)), "[]"]


def test_a_framework_imported_after_init_is_patched_then() -> None:
    out = _run(
        """
        import sentry_feedback as sf
        from sentry_feedback.testing import MockTransport
        transport = MockTransport()
        sf.init(transport=transport)
        import flask  # after init
        app = flask.Flask("late")

        @app.get("/boom/<name>")
        def boom(name):
            raise ValueError(name)

        @app.errorhandler(500)
        def page(error):
            return sf.last_event_id() or "none", 500

        answer = app.test_client().get("/boom/x")
        sf.flush(5)
        (event,) = transport.events
        mechanism = event["exception"]["values"][0]["mechanism"]["type"]
        print(answer.text == event["event_id"], event["transaction"], mechanism)
        """
    )
    assert out == "True /boom/<name> flask"


def test_when_imported_runs_after_the_module_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentry_feedback.integrations import _HookedLoader, when_imported

    (tmp_path / "late_module_for_hooks.py").write_text("VALUE = 42\n")
    (tmp_path / "failing_hook_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[object] = []
    when_imported("late_module_for_hooks", lambda module: seen.append(module.VALUE))
    when_imported("late_module_for_hooks", lambda module: seen.append("second"))
    assert seen == []
    import late_module_for_hooks  # type: ignore[import-not-found]

    assert seen == [42, "second"]
    assert not isinstance(late_module_for_hooks.__loader__, _HookedLoader)
    assert not isinstance(late_module_for_hooks.__spec__.loader, _HookedLoader)
    when_imported("late_module_for_hooks", lambda module: seen.append("now"))  # imported already: at once
    assert seen == [42, "second", "now"]

    def failing(module: object) -> None:
        raise RuntimeError("hook failed")

    when_imported("failing_hook_module", failing)
    import failing_hook_module  # type: ignore[import-not-found]  # the import itself still works

    assert failing_hook_module.VALUE == 1
    for name in ("late_module_for_hooks", "failing_hook_module"):
        sys.modules.pop(name, None)


def test_a_record_of_an_error_the_web_layer_reported_is_no_second_event() -> None:
    from sentry_feedback._web import capture_unhandled

    transport = MockTransport()
    client = sf.init(transport=transport, default_integrations=False, integrations=[LoggingIntegration()])
    try:
        raise KeyError("cart")
    except KeyError as error:
        event_id = capture_unhandled(error, "wsgi")
        logging.getLogger("server").error("Exception in application", exc_info=True)  # as servers log it
    logging.getLogger("server").error("unrelated failure")
    sf.capture_feedback("after")
    assert sf.flush(5)
    assert [e.get("logentry", {}).get("message") for e in transport.events] == [None, "unrelated failure"]
    assert transport.events[0]["event_id"] == event_id
    crumbs = [c["message"] for c in transport.feedback[0]["breadcrumbs"]["values"]]
    assert "Exception in application" in crumbs  # still a breadcrumb
    assert client.client_reports.totals() == {}  # nothing dropped: it never became an event
