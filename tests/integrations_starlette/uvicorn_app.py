"""The FastAPI application the uvicorn test serves (imported by the server, not by pytest).

The SDK is initialized on import with the DSN in ``WEB_TEST_DSN`` (the test's LocalReceiver).

* ``/together``: set the user from the ``X-User`` header, wait until a second request has set
  its own (both are in flight at once: FastAPI runs sync endpoints in threads), capture a
  feedback, then raise ``ZeroDivisionError``; the 500 handler answers ``error <last_event_id()>``;
* ``/flush``: wait until everything captured was sent.
"""

from __future__ import annotations

import os
import threading
from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.responses import PlainTextResponse

import sentry_feedback
from sentry_feedback.integrations.fastapi import FastApiIntegration

sentry_feedback.init(
    dsn=os.environ["WEB_TEST_DSN"], send_default_pii=True, release="fastapi-test@1", integrations=[FastApiIntegration()]
)

app = FastAPI()
_together = threading.Barrier(2, timeout=10)


@app.get("/together")
def together(x_user: Annotated[str, Header()]) -> None:
    sentry_feedback.set_user({"id": x_user})
    _together.wait()  # both requests have set their user before either captures
    sentry_feedback.capture_feedback(f"feedback from {x_user}")
    raise ZeroDivisionError(f"boom for {x_user}")


@app.exception_handler(500)
async def server_error(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(f"error {sentry_feedback.last_event_id()}", status_code=500)


@app.get("/flush")
def flush() -> str:
    return "flushed" if sentry_feedback.flush(10) else "not flushed"
