"""The Flask application the gunicorn test serves (imported by the server, not by pytest).

The SDK is initialized on import with the DSN in ``WEB_TEST_DSN`` (the test's LocalReceiver).

* ``/together/<user>``: set the user, wait until a second request has set its own, capture a feedback;
* ``/boom/<user>``: set the user and raise ``ZeroDivisionError``; the 500 page shows ``last_event_id()``;
* ``/flush``: wait until everything captured was sent.
"""

from __future__ import annotations

import os
import threading

import flask

import sentry_feedback
from sentry_feedback.integrations.flask import FlaskIntegration

sentry_feedback.init(
    dsn=os.environ["WEB_TEST_DSN"], send_default_pii=True, release="flask-test@1", integrations=[FlaskIntegration()]
)

app = flask.Flask(__name__)
_together = threading.Barrier(2)


@app.get("/together/<user>")
def together(user: str) -> str:
    sentry_feedback.set_user({"id": user})
    _together.wait(10)  # both requests have set their user before either captures
    return sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped"


@app.get("/boom/<user>")
def boom(user: str) -> str:
    sentry_feedback.set_user({"id": user})
    raise ZeroDivisionError(f"boom for {user}")


@app.errorhandler(500)
def server_error(error: Exception) -> tuple[str, int]:
    return f"error {sentry_feedback.last_event_id()}", 500


@app.get("/flush")
def flush() -> str:
    return "flushed" if sentry_feedback.flush(10) else "not flushed"
