"""DjangoIntegration under ASGI: Django's ASGIHandler called directly as a server would, and the AsyncClient."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient

import sentry_feedback
from integrations_web.direct import Message, call_asgi, http_scope, stored
from sentry_feedback.asgi import SentryAsgiMiddleware
from sentry_feedback.integrations.django import DjangoIntegration
from sentry_feedback.server import LocalReceiver

from . import views

Init = Callable[..., sentry_feedback.Client]


def body_of(sent: list[Message]) -> tuple[int, str]:
    """The status and the body of the response an ASGI application sent."""
    status = next(message["status"] for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return status, body.decode()


@pytest.mark.parametrize("path", ["/orders/7/pay", "/async/7/pay"])
@pytest.mark.parametrize("wrapped_by_hand", [False, True])
def test_error_captured_once_with_last_event_id_in_handler500(
    sentry_init: Init, sentry_receiver: LocalReceiver, path: str, wrapped_by_hand: bool
) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    app = SentryAsgiMiddleware(ASGIHandler()) if wrapped_by_hand else ASGIHandler()
    sent = asyncio.run(call_asgi(app, http_scope(path, query=b"coupon=SUMMER")))
    (event,), _ = stored(sentry_receiver)
    assert body_of(sent) == (500, f"error {event.event_id}")
    assert views.error_pages[-1] == event.event_id
    assert event.data["exception"]["values"][0]["mechanism"] == {"type": "django", "handled": False, "exception_id": 0}
    route = "/async/<int:order_id>/pay" if path.startswith("/async") else "/orders/<int:order_id>/pay"
    assert event.data["transaction"] == route
    assert event.data["transaction_info"] == {"source": "route"}
    assert event.data["request"]["url"] == f"http://testserver{path}"
    assert event.data["request"]["query_string"] == "coupon=SUMMER"
    assert event.data["user"]["id"] in ("payer", "async payer")


def test_concurrent_requests_keep_their_own_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    views.arrivals.clear()
    views.expected = 2
    app = ASGIHandler()

    async def both() -> list[list[Message]]:
        return await asyncio.gather(*(call_asgi(app, http_scope(f"/async/together/{user}")) for user in ("ann", "bob")))

    answers = [body_of(sent)[1] for sent in asyncio.run(both())]
    _, feedback = stored(sentry_receiver)
    assert sorted(answers) == sorted(item.event_id for item in feedback)
    assert sorted((item.message, item.user, item.tags["user_tag"]) for item in feedback) == [
        ("feedback from ann", {"id": "ann"}, "ann"),
        ("feedback from bob", {"id": "bob"}, "bob"),
    ]
    assert all(item.data["transaction"] == "/async/together/<str:user>" for item in feedback)
    assert sentry_feedback.get_isolation_scope().user is None


def test_request_user_is_not_loaded_from_the_event_loop(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    """Under ASGI only a user the application loaded itself is read: no database query from the SDK."""
    sentry_init(integrations=[DjangoIntegration()], send_default_pii=True)
    views.user_loads.clear()
    asyncio.run(call_asgi(ASGIHandler(), http_scope("/replace-user")))
    _, (feedback,) = stored(sentry_receiver)
    assert views.user_loads == []
    assert feedback.user == {"ip_address": "192.0.2.20"}


def test_streaming_response_keeps_the_request_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    sent = asyncio.run(call_asgi(ASGIHandler(), http_scope("/stream-async")))
    _, (feedback,) = stored(sentry_receiver)
    assert body_of(sent) == (200, f"first {feedback.event_id}")
    assert feedback.user == {"id": "async streamer"}
    assert feedback.data["transaction"] == "/stream-async"


def test_lifespan_is_left_to_django(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    with pytest.raises(ValueError, match="lifespan"):
        asyncio.run(call_asgi(ASGIHandler(), {"type": "lifespan", "asgi": {"version": "3.0"}}))
    events, _ = stored(sentry_receiver)
    assert events == []


def test_async_client(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])

    async def browse() -> tuple[str, str]:
        client = AsyncClient(raise_request_exception=False)
        error = await client.get("/async/3/pay")
        feedback = await client.get("/async/3/feedback", headers={"X-User": "ann"})
        return error.content.decode(), feedback.content.decode()

    error_page, feedback_id = asyncio.run(browse())
    (event,), (feedback,) = stored(sentry_receiver)
    assert error_page == f"error {event.event_id}"
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "django"
    assert event.data["transaction"] == "/async/<int:order_id>/pay"
    assert feedback.event_id == feedback_id
    assert feedback.user == {"id": "ann"}
    assert feedback.data["request"]["url"] == "http://testserver/async/3/feedback"
    assert feedback.data["transaction"] == "/async/<int:order_id>/feedback"


def test_async_client_streaming_response(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])

    async def browse() -> bytes:
        answer = await AsyncClient().get("/stream-async")
        return b"".join([chunk async for chunk in answer.streaming_content])  # type: ignore[union-attr]

    content = asyncio.run(browse()).decode()
    _, (feedback,) = stored(sentry_receiver)
    assert content == f"first {feedback.event_id}"
    assert feedback.user == {"id": "async streamer"}
    assert feedback.data["transaction"] == "/stream-async"
