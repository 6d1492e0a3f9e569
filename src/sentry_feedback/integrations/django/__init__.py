"""Django: the WSGI and ASGI middleware for every Django request, route names, errors and the user (``django``).

>>> import sentry_feedback
>>> from sentry_feedback.integrations.django import DjangoIntegration
>>> sentry_feedback.init(dsn=..., integrations=[DjangoIntegration()])

See the "Django" page of the documentation. This module imports Django, and the SDK's request
handling, only when the integration is set up (and never declares a dependency on it).
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Mapping

from ..._context import get_client
from ..._framework import FrameworkIntegration
from ..._log import logger
from ..logging import ignore_logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
    from typing import Any, ClassVar

    from ..._request_data import BodyRecorder, client_ip, from_wsgi_environ
    from ..._types import Event, Hint
    from ..._web import RequestScope, active_request, capture_unhandled
    from ._routes import route_of, view_path

__all__ = ["DjangoIntegration"]


#: Set on the Django methods once they are wrapped.
_PATCHED = "__sentry_feedback_patched__"
_SIGNAL_UID = "sentry_feedback.integrations.django"


class DjangoIntegration(FrameworkIntegration):
    """Every Django request runs in the WSGI or ASGI middleware, with Django's route, errors and user.

    * ``WSGIHandler.__call__`` and ``ASGIHandler.__call__`` are wrapped once per process:
      each request gets what :class:`~sentry_feedback.wsgi.SentryWsgiMiddleware` or
      :class:`~sentry_feedback.asgi.SentryAsgiMiddleware` gives (its own isolation
      scope, the trace, the request data). An application wrapped by hand as well is not
      handled twice. Requests that reach Django without them (its test clients) get the
      same from ``BaseHandler.get_response``.
    * Once Django resolved the URL, the transaction is named after the URL pattern
      (``transaction_style="url"``, the default, source ``route``, e.g.
      ``/orders/<int:order_id>/pay``, nested ``include()`` patterns joined, ``re_path``
      regular expressions made readable) or the view (``"function_name"``, source
      ``component``, e.g. ``shop.views.pay``). A request that matched no pattern keeps
      its path (source ``url``); a name the application set first wins.
    * An exception Django answers with a 500 (``got_request_exception``) is captured once,
      with mechanism ``{"type": "django", "handled": false}``; neither the middleware nor
      the ``django.request`` record Django logs for it report it again.
      ``last_event_id()`` gives its id in the ``handler500`` view.
    * With ``send_default_pii``, the user is ``request.user`` when authenticated (``id``,
      ``username``, ``email``) unless the application set one, and ``user.ip_address``
      is ``REMOTE_ADDR`` when the middleware found no address. ``request.user`` is read
      only when ``django.contrib.auth`` is installed; for an ASGI request only when the
      application loaded it already (no database query from an event loop).
    * The development server's request log (the ``django.server`` logger) is not turned
      into breadcrumbs or events.

    ``use_x_forwarded_for`` and ``max_request_body_size`` are the middleware's options. A
    wrong option raises ``TypeError`` or ``ValueError``.
    """

    identifier: ClassVar[str] = "django"
    patches: ClassVar[str | None] = "django"

    transaction_styles: ClassVar[tuple[str, ...]] = ("url", "function_name")

    def setup_once(self) -> None:
        """Wrap Django's request handlers, connect to ``got_request_exception``, ignore ``django.server``."""
        import importlib  # here, not at init: the integration is made before Django is imported

        _import_request_handling()
        base = importlib.import_module("django.core.handlers.base").BaseHandler
        wsgi_handler = importlib.import_module("django.core.handlers.wsgi").WSGIHandler
        asgi_handler = importlib.import_module("django.core.handlers.asgi").ASGIHandler
        signals = importlib.import_module("django.core.signals")

        ignore_logger("django.server")
        signals.got_request_exception.connect(_got_request_exception, weak=False, dispatch_uid=_SIGNAL_UID)
        _patch(wsgi_handler, "__call__", _wrap_wsgi_call)
        _patch(asgi_handler, "__call__", _wrap_asgi_call)
        _patch(base, "get_response", _wrap_get_response)
        _patch(base, "get_response_async", _wrap_get_response_async)
        _patch(base, "resolve_request", _wrap_resolve_request)


def _import_request_handling() -> None:
    """Bind the SDK's request handling here: it is imported with Django (by ``setup_once``), not at ``init``."""
    global BodyRecorder, RequestScope, active_request, capture_unhandled, client_ip, from_wsgi_environ
    global route_of, view_path
    from ..._request_data import BodyRecorder, client_ip, from_wsgi_environ
    from ..._web import RequestScope, active_request, capture_unhandled
    from ._routes import route_of, view_path


def _integration() -> DjangoIntegration | None:
    return get_client().get_integration(DjangoIntegration)


def _patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` with ``wrap(original)``, once."""
    original = getattr(owner, name)
    if getattr(original, _PATCHED, False):
        return
    wrapper = functools.wraps(original)(wrap(original))
    setattr(wrapper, _PATCHED, True)
    setattr(owner, name, wrapper)


# -- the handlers ------------------------------------------------------------------------------------


def _wrap_wsgi_call(original: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        integration = _integration()
        if integration is None or active_request() is not None:
            return original(self, environ, start_response)
        from ...wsgi import SentryWsgiMiddleware

        def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            return original(self, environ, start_response)

        middleware = SentryWsgiMiddleware(
            application,
            use_x_forwarded_for=integration.use_x_forwarded_for,
            max_request_body_size=integration.max_request_body_size,
        )
        return middleware(environ, start_response)

    return __call__


def _wrap_asgi_call(original: Callable[..., Any]) -> Callable[..., Any]:
    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> None:
        integration = _integration()
        # Django serves HTTP only; it refuses other connections itself.
        if integration is None or active_request() is not None or not _is_http(scope):
            await original(self, scope, receive, send)
            return
        from ...asgi import SentryAsgiMiddleware

        async def application(scope: Any, receive: Any, send: Any) -> None:
            await original(self, scope, receive, send)

        middleware = SentryAsgiMiddleware(
            application,
            use_x_forwarded_for=integration.use_x_forwarded_for,
            max_request_body_size=integration.max_request_body_size,
        )
        await middleware(scope, receive, send)

    return __call__


def _is_http(scope: object) -> bool:
    return isinstance(scope, Mapping) and scope.get("type") == "http"


def _wrap_get_response(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def get_response(self: Any, request: Any) -> Any:
        integration = _integration()
        if integration is None:
            return original(self, request)
        web = active_request()
        if web is not None:  # the WSGI or ASGI middleware opened the request's scope
            _watch_user(web, request, is_async=False)
            return original(self, request)
        web = _open(request, integration)  # a test client, or a handler of the application's own
        if web is None:
            return original(self, request)
        with web.handling():
            _watch_user(web, request, is_async=False)
            response = original(self, request)
        return _settle(response, web)

    return get_response


def _wrap_get_response_async(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    async def get_response_async(self: Any, request: Any) -> Any:
        integration = _integration()
        if integration is None:
            return await original(self, request)
        web = active_request()
        if web is not None:
            _watch_user(web, request, is_async=True)
            return await original(self, request)
        web = _open(request, integration)
        if web is None:
            return await original(self, request)
        with web.handling():
            _watch_user(web, request, is_async=True)
            response = await original(self, request)
        return _settle(response, web)

    return get_response_async


def _open(request: Any, integration: DjangoIntegration) -> RequestScope | None:
    """The scope of a request that came in without the middleware, from ``request.META``."""
    try:
        options = get_client().options
        meta = request.META
        if "wsgi.url_scheme" not in meta:  # an ASGIRequest
            meta = {**meta, "wsgi.url_scheme": request.scheme}
        data = from_wsgi_environ(meta, options=options, use_x_forwarded_for=integration.use_x_forwarded_for)
        body = None
        stream = getattr(request, "_stream", None)
        if (
            options.send_default_pii
            and data.wants_body(integration.max_request_body_size)
            and stream is not None
            and not hasattr(request, "_body")
        ):
            from ...wsgi import _RecordingInput

            body = BodyRecorder(integration.max_request_body_size, data.content_type, data.content_length)
            request._stream = _RecordingInput(stream, body)
        return RequestScope(data, mechanism_type="django", body=body)
    except Exception:
        logger.exception("could not set up the scope of a Django request; the request runs without it")
        return None


def _settle(response: Any, web: RequestScope) -> Any:
    """Keep the request's scope while a streamed response is iterated; else the request is over."""
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        web.set_response_status(status)
    try:
        if getattr(response, "streaming", False):
            if getattr(response, "is_async", False):
                response.streaming_content = _scoped_async(response.streaming_content, web)
            else:
                from ...wsgi import _ScopedResponse

                response.streaming_content = _ScopedResponse(response.streaming_content, web)
            return response
    except Exception:
        logger.exception("could not keep the scope of a streamed Django response")
    web.finish()
    return response


async def _scoped_async(content: AsyncIterable[bytes], web: RequestScope) -> AsyncIterator[bytes]:
    """``content`` iterated in the request's scope, one step at a time."""
    try:
        with web.handling():
            iterator = aiter(content)
        while True:
            with web.handling():
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    return
            yield chunk
    finally:
        web.finish()


# -- errors --------------------------------------------------------------------------------------------


def _got_request_exception(sender: object, request: object = None, **extra: object) -> None:
    """Capture the exception Django is about to answer with a 500 (it is the one being handled)."""
    try:
        error = sys.exc_info()[1]
        if error is None or _integration() is None:
            return
        capture_unhandled(error, "django")  # once; the django.request record of it is no second event
    except Exception:  # a receiver that raises would break Django's error handling
        logger.exception("could not capture the exception of a Django request")


# -- transaction names -----------------------------------------------------------------------------------


def _wrap_resolve_request(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def resolve_request(self: Any, request: Any) -> Any:
        match = original(self, request)
        _name_transaction(match)
        return match

    return resolve_request


def _name_transaction(match: Any) -> None:
    """Name the request's transaction after the URL pattern or the view that ``match`` found."""
    try:
        integration = _integration()
        web = active_request()
        if integration is None or web is None:
            return
        named = web.transaction()
        if named is not None and named[1] != "url":
            return  # the application named it already
        if integration.transaction_style == "function_name":
            name = view_path(match.func)
            if name:
                web.set_transaction_name(name, "component")
        else:
            name = route_of(match)
            if name:
                web.set_transaction_name(name, "route")
    except Exception:
        logger.exception("could not name the transaction of a Django request")


# -- the user --------------------------------------------------------------------------------------------


def _watch_user(web: RequestScope, request: Any, *, is_async: bool) -> None:
    """With ``send_default_pii``, add the request's user (and address) to the events of the request."""
    try:
        if not get_client().options.send_default_pii:
            return
        ref = weakref.ref(request)

        def add_user(event: Event, hint: Hint) -> Event:
            http_request = ref()
            active = active_request()
            if http_request is None or (active is not None and active is not web):
                return event  # the request is gone, or another request describes the event
            try:
                client = get_client()
                if client.options.send_default_pii and client.get_integration(DjangoIntegration) is not None:
                    _add_user(event, http_request, is_async)
            except Exception:
                logger.debug("could not add the user of a Django request", exc_info=True)
            return event

        web.isolation.add_event_processor(add_user)
    except Exception:
        logger.exception("could not watch the user of a Django request")


def _add_user(event: Event, request: Any, is_async: bool) -> None:
    user = event.get("user")
    user = dict(user) if isinstance(user, dict) else {}
    changed = False
    if not user.keys() - {"ip_address"}:  # the application set no user
        found = _request_user(request, is_async)
        if found:
            user.update(found)
            changed = True
    if not user.get("ip_address"):
        meta = getattr(request, "META", None)
        remote = meta.get("REMOTE_ADDR") if isinstance(meta, Mapping) else None
        address = client_ip(remote) if isinstance(remote, str) else None
        if address:
            user["ip_address"] = address
            changed = True
    if changed:
        event["user"] = user


def _request_user(request: Any, is_async: bool) -> dict[str, str] | None:
    """``id``, ``username`` and ``email`` of the authenticated ``request.user``, if any."""
    import importlib

    apps = importlib.import_module("django.apps").apps
    if not apps.is_installed("django.contrib.auth"):
        return None  # request.user, if anything set it, is not Django's: do not load it
    user = getattr(request, "user", None)
    functional = importlib.import_module("django.utils.functional")
    if isinstance(user, functional.LazyObject) and user._wrapped is functional.empty and is_async:
        # Loading it would query the database from the event loop (or a passing thread).
        user = getattr(request, "_acached_user", None) or getattr(request, "_cached_user", None)
    if user is None or not user.is_authenticated:
        return None
    found: dict[str, str] = {}
    key = getattr(user, "pk", None)
    if key is not None:
        found["id"] = str(key)
    get_username = getattr(user, "get_username", None)
    username = get_username() if callable(get_username) else getattr(user, "username", None)
    if isinstance(username, str) and username:
        found["username"] = username
    email_field = getattr(user, "get_email_field_name", None)
    email = getattr(user, email_field() if callable(email_field) else "email", None)
    if isinstance(email, str) and email:
        found["email"] = email
    return found
