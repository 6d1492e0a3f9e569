"""The views of ``urls.py``."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views import View

import sentry_feedback
from sentry_feedback.wsgi import set_transaction_name

#: What ``last_event_id()`` gave in each call of ``server_error`` (the project's handler500).
error_pages: list[str | None] = []
#: Makes two ``together`` requests wait for each other (replaced by the test that uses it).
together_barrier = threading.Barrier(2)


def pay(request: HttpRequest, order_id: int) -> HttpResponse:
    sentry_feedback.set_user({"id": "payer"})
    raise ZeroDivisionError(f"cannot pay order {order_id}")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the error page shows the id of the request's error."""
    event_id = sentry_feedback.last_event_id()
    error_pages.append(event_id)
    return HttpResponse(f"error {event_id}", status=500)


def feedback(request: HttpRequest, **kwargs: object) -> HttpResponse:
    """Captures a feedback, linked to the error named in ``?error=`` if any."""
    return HttpResponse(
        sentry_feedback.capture_feedback("it broke", associated_event_id=request.GET.get("error")) or "dropped"
    )


def archive(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return feedback(request)


def named(request: HttpRequest) -> HttpResponse:
    set_transaction_name("checkout flow")
    return feedback(request)


def together(request: HttpRequest, user: str) -> HttpResponse:
    sentry_feedback.set_user({"id": user})
    sentry_feedback.set_tag("user_tag", user)
    together_barrier.wait(10)  # both requests have set their user before either captures
    return HttpResponse(sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    sentry_feedback.set_user({"id": "streamer"})

    def chunks() -> Iterator[bytes]:
        yield b"first "
        yield (sentry_feedback.capture_feedback("while streaming") or "dropped").encode()

    return StreamingHttpResponse(chunks())


def stream_async(request: HttpRequest) -> StreamingHttpResponse:
    sentry_feedback.set_user({"id": "async streamer"})

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first "
        await asyncio.sleep(0)
        yield (sentry_feedback.capture_feedback("while streaming") or "dropped").encode()

    return StreamingHttpResponse(chunks())


def logged(request: HttpRequest) -> HttpResponse:
    server = logging.getLogger("django.server")
    server.info('"GET /logged HTTP/1.1" 200 2')
    server.error('"GET /logged HTTP/1.1" 500 145')
    logging.getLogger("shop").warning("kept")
    return feedback(request)


def whoami(request: HttpRequest) -> HttpResponse:
    """Captures a feedback; with ``?set=<id>`` the application sets the user first."""
    if "set" in request.GET:
        sentry_feedback.set_user({"id": request.GET["set"]})
    return feedback(request)


#: One entry each time the ``user`` that ``replace_user`` puts on the request is loaded.
user_loads: list[str] = []


def replace_user(request: HttpRequest) -> HttpResponse:
    """A request whose ``user`` is loaded lazily by code of its own, counting the loads."""
    from django.contrib.auth.models import AnonymousUser
    from django.utils.functional import SimpleLazyObject

    def load() -> object:
        user_loads.append(request.path)
        return AnonymousUser()

    request.user = SimpleLazyObject(load)  # type: ignore[assignment]
    return feedback(request)


class _BrokenUser:
    @property
    def is_authenticated(self) -> bool:
        raise RuntimeError("the user backend is down")


def broken_user(request: HttpRequest) -> HttpResponse:
    request.user = _BrokenUser()  # type: ignore[assignment]
    return feedback(request)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: captures a feedback, as a "page not found? tell us" form would."""
    return HttpResponse(sentry_feedback.capture_feedback("no such page") or "dropped", status=404)


def echo_form(request: HttpRequest) -> HttpResponse:
    request.POST.get("comment")  # the application reads the body
    return feedback(request)


async def async_feedback(request: HttpRequest, order_id: int) -> HttpResponse:
    sentry_feedback.set_user({"id": request.headers.get("X-User", "anonymous")})
    await asyncio.sleep(0)
    return HttpResponse(sentry_feedback.capture_feedback(f"feedback on {order_id}") or "dropped")


async def async_pay(request: HttpRequest, order_id: int) -> HttpResponse:
    sentry_feedback.set_user({"id": "async payer"})
    await asyncio.sleep(0)
    raise ZeroDivisionError(f"cannot pay order {order_id}")


#: The requests in ``async_together``, each waiting until all ``expected`` have arrived.
arrivals: list[asyncio.Event] = []
expected = 2


async def async_together(request: HttpRequest, user: str) -> HttpResponse:
    sentry_feedback.set_user({"id": user})
    sentry_feedback.set_tag("user_tag", user)
    mine = asyncio.Event()
    arrivals.append(mine)
    if len(arrivals) == expected:
        for arrival in arrivals:
            arrival.set()
    await asyncio.wait_for(mine.wait(), 10)  # every request has set its user before any captures
    return HttpResponse(sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped")


class OrderView(View):
    """A class-based view."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return feedback(request)
