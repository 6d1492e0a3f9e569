"""Starlette: the ASGI middleware for every Starlette application, route names and errors (``starlette``).

>>> import sentry_feedback
>>> from sentry_feedback.integrations.starlette import StarletteIntegration
>>> sentry_feedback.init(dsn=..., integrations=[StarletteIntegration()])

FastAPI applications are Starlette applications: :class:`~sentry_feedback.integrations.fastapi.FastApiIntegration`
is this integration under the name ``fastapi``. See the "FastAPI and Starlette" page of the
documentation. This module imports Starlette only when the integration is set up.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from contextvars import ContextVar

from .._context import get_client
from .._framework import DEFAULT_MAX_BODY_SIZE, FrameworkIntegration
from .._log import logger
from . import Integration
from .dedupe import _MARK
from .logging import ignore_logger, mark_reported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any, ClassVar

    from .._client import Client
    from .._types import Event, Hint
    from .._web import RequestScope
    from ..asgi import Receive, Send

    Scope = MutableMapping[str, Any]

__all__ = ["StarletteIntegration"]

#: The mechanism of the errors both integrations capture (as sentry-python reports FastAPI's errors too).
MECHANISM = "starlette"
#: HTTP statuses of ``HTTPException`` reported by default.
DEFAULT_FAILED_REQUEST_STATUS_CODES: frozenset[int] = frozenset(range(500, 600))
#: Set on the functions that replace Starlette's, so that they are replaced once.
_PATCHED = "__sentry_feedback_patched__"
_KINDS = ("http", "websocket", "lifespan")
#: What matching a route reads from the connection scope (a copy: routing changes the scope).
_PROBE_KEYS = ("type", "path", "raw_path", "root_path", "app_root_path", "method", "headers", "scheme", "server")
_MAX_DEPTH = 16
_MAX_STATUS_CODES = 1000
_USER_FIELDS = ("id", "username", "email")


class _Handling:
    """The request this integration handles in this context: its scope, connection scope and integration."""

    __slots__ = ("connection", "integration", "request")

    def __init__(self, request: RequestScope, connection: Scope, integration: StarletteIntegration) -> None:
        self.request = request
        self.connection = connection
        self.integration = integration


_handling: ContextVar[_Handling | None] = ContextVar("sentry_feedback.starlette_request", default=None)


class StarletteIntegration(FrameworkIntegration):
    """Every Starlette (and FastAPI) application runs in the ASGI middleware, with its routes and errors.

    * ``Starlette.__call__`` is wrapped once per process: each request, websocket connection
      and lifespan of every application gets what
      :class:`~sentry_feedback.asgi.SentryAsgiMiddleware` gives (its own isolation scope,
      the trace, the request data). An application wrapped by hand as well, or mounted in
      another one, is not handled twice.
    * The transaction is named when the request starts, after the route it matches, with
      the prefixes of mounts and included routers (``transaction_style="url"``, the default,
      source ``route``, e.g. ``/orders/{order_id}/pay``), or after the endpoint's dotted
      name (``"endpoint"``, source ``component``). A request that matches no route keeps its
      path (source ``url``).
    * An exception the application does not handle is captured once, with mechanism
      ``{"type": "starlette", "handled": false}``, before the handler Starlette's
      ``ServerErrorMiddleware`` runs for it (the one registered for ``500`` or
      ``Exception``, which reads its id with ``last_event_id()``), and raised on unchanged
      for the server to log. Neither the ASGI layer nor the server's log record of it
      report it again. Exceptions an exception handler answers are the application's
      answers and are not reported, except an ``HTTPException`` whose status is in
      ``failed_request_status_codes`` (mechanism ``handled: true``).
    * With ``send_default_pii``, the user Starlette's ``AuthenticationMiddleware``
      authenticated fills ``user.id``, ``user.username`` and ``user.email`` when the
      event's user has none of them (the ASGI layer adds ``user.ip_address``).
    * uvicorn's access log (the ``uvicorn.access`` logger) is not turned into breadcrumbs.

    ``use_x_forwarded_for`` and ``max_request_body_size`` are the middleware's options. A
    wrong option raises ``TypeError`` or ``ValueError``.
    """

    identifier: ClassVar[str] = "starlette"
    patches: ClassVar[str | None] = "starlette"

    transaction_styles: ClassVar[tuple[str, ...]] = ("url", "endpoint")

    def __init__(
        self,
        *,
        transaction_style: str = "url",
        use_x_forwarded_for: bool = False,
        max_request_body_size: int = DEFAULT_MAX_BODY_SIZE,
        failed_request_status_codes: Iterable[int] = DEFAULT_FAILED_REQUEST_STATUS_CODES,
    ) -> None:
        super().__init__(
            transaction_style=transaction_style,
            use_x_forwarded_for=use_x_forwarded_for,
            max_request_body_size=max_request_body_size,
        )
        #: The statuses of the ``HTTPException`` s reported although a handler answers them.
        self.failed_request_status_codes = _status_codes(failed_request_status_codes)

    def setup_once(self) -> None:
        """Wrap ``Starlette.__call__`` and Starlette's error middlewares; ignore the ``uvicorn.access`` logger."""
        from starlette.applications import Starlette
        from starlette.middleware.errors import ServerErrorMiddleware
        from starlette.middleware.exceptions import ExceptionMiddleware

        ignore_logger("uvicorn.access")
        _patch_application(Starlette)
        _patch_server_errors(ServerErrorMiddleware)
        _patch_exception_handlers(ExceptionMiddleware)

    def setup(self, client: Client) -> None:
        """Register the client's event processor (the server's log record of a reported error, the user)."""

        def process(event: Event, hint: Hint) -> Event | None:
            try:
                if _integration_of(client.integrations, None) is not self:
                    return event  # both integrations are enabled: the other one's processor does this
                if client.options.send_default_pii:
                    _add_authenticated_user(event)
            except Exception:
                logger.debug("could not process an event for the starlette integration", exc_info=True)
            return event

        client.add_event_processor(process)


# -- which integration ---------------------------------------------------------------------------------


def _integration_for(app: object) -> StarletteIntegration | None:
    """The active client's integration for ``app``: ``fastapi`` first for a FastAPI application."""
    try:
        return _integration_of(get_client().integrations, app)
    except Exception:
        logger.debug("could not look up the starlette integration", exc_info=True)
        return None


def _integration_of(integrations: Mapping[str, Integration], app: object) -> StarletteIntegration | None:
    order = ("fastapi", "starlette") if _is_fastapi(app) else ("starlette", "fastapi")
    for identifier in order:
        found = integrations.get(identifier)
        if isinstance(found, StarletteIntegration):
            return found
    return None


def _is_fastapi(app: object) -> bool:
    return app is not None and any(
        cls.__name__ == "FastAPI" and cls.__module__.startswith("fastapi") for cls in type(app).__mro__
    )


def _request_integration() -> StarletteIntegration | None:
    """The integration handling this request, else the active client's."""
    handling = _handling.get()
    return handling.integration if handling is not None else _integration_for(None)


# -- every application in the ASGI middleware ------------------------------------------------------


def _patch_application(starlette_class: type[Any]) -> None:
    # The request handling is imported with Starlette (by ``setup_once``), not at ``init``.
    from .._web import active_request
    from ..asgi import SentryAsgiMiddleware

    original = starlette_class.__call__
    if getattr(original, _PATCHED, False):
        return

    async def __call__(self: Any, scope: Scope, receive: Receive, send: Send) -> None:
        integration = _integration_for(self)
        kind = scope.get("type") if isinstance(scope, MutableMapping) else None
        if integration is None or kind not in _KINDS:
            await original(self, scope, receive, send)
            return
        request = active_request()
        if request is not None:
            handling = _handling.get()
            if handling is not None and handling.request is request:
                await original(self, scope, receive, send)  # mounted in an application being handled
            else:  # in a SentryAsgiMiddleware added by hand, which opened the request's scope
                await _run(original, self, scope, receive, send, integration)
            return

        async def application(scope: Scope, receive: Receive, send: Send) -> None:
            await _run(original, self, scope, receive, send, integration)

        try:
            middleware = SentryAsgiMiddleware(
                application,
                use_x_forwarded_for=integration.use_x_forwarded_for,
                max_request_body_size=integration.max_request_body_size,
            )
        except Exception:
            logger.exception("could not set up the ASGI middleware for a Starlette application")
            await original(self, scope, receive, send)
            return
        await middleware(scope, receive, send)

    setattr(__call__, _PATCHED, True)
    __call__.__wrapped__ = original  # type: ignore[attr-defined]
    starlette_class.__call__ = __call__


async def _run(
    original: Callable[[Any, Scope, Receive, Send], Awaitable[None]],
    app: Any,
    scope: Scope,
    receive: Receive,
    send: Send,
    integration: StarletteIntegration,
) -> None:
    """Run the application in the request's scope (opened by the ASGI middleware); capture what escapes."""
    from .._web import active_request

    request = active_request()
    token = None
    if request is not None:
        _name_transaction(app, scope, integration, request)
        token = _handling.set(_Handling(request, scope, integration))
    try:
        await original(app, scope, receive, send)
    except Exception as exc:
        _capture_unhandled(exc)
        raise
    finally:
        if token is not None:
            _handling.reset(token)


def _capture_unhandled(error: BaseException) -> None:
    """Capture ``error`` (once, whoever saw it first); the server's log record of it is no second event."""
    from .._web import capture_unhandled

    capture_unhandled(error, MECHANISM)


# -- errors: before the 500 handler, and HTTPExceptions with a failed status -------------------------


class _CaptureErrors:
    """Put inside Starlette's ``ServerErrorMiddleware``: captures an error before its 500 handler runs."""

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        #: The application ``ServerErrorMiddleware`` wraps.
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if _request_integration() is not None:
                _capture_unhandled(exc)
            raise


def _patch_server_errors(middleware_class: type[Any]) -> None:
    original = middleware_class.__init__
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def __init__(self: Any, app: Any, *args: Any, **kwargs: Any) -> None:
        original(self, _CaptureErrors(app), *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    middleware_class.__init__ = __init__


def _patch_exception_handlers(middleware_class: type[Any]) -> None:
    """Wrap the handlers ``ExceptionMiddleware`` may run for an ``HTTPException`` to report failed statuses."""
    from starlette.exceptions import HTTPException

    original = middleware_class.__init__
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def __init__(self: Any, app: Any, *args: Any, **kwargs: Any) -> None:
        original(self, app, *args, **kwargs)
        try:
            handlers = kwargs.get("handlers", args[0] if args else None)
            given = dict(handlers.items()) if isinstance(handlers, Mapping) else {}
            if HTTPException not in given:
                given[HTTPException] = self.http_exception  # Starlette's own handler
            for key, handler in given.items():
                http_error = isinstance(key, type) and issubclass(key, HTTPException)
                if (http_error or isinstance(key, int)) and callable(handler):
                    self.add_exception_handler(key, _reporting(handler))
        except Exception:
            logger.exception("could not watch the exception handlers of a Starlette application")

    setattr(__init__, _PATCHED, True)
    middleware_class.__init__ = __init__


def _reporting(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler``, reporting an ``HTTPException`` with a failed status first; as async as ``handler`` is."""
    if getattr(handler, _PATCHED, False):
        return handler
    if _is_async_callable(handler):

        async def report_then_handle_async(connection: Any, error: Exception) -> Any:
            _report_failed_request(error)
            return await handler(connection, error)

        wrapper: Callable[..., Any] = report_then_handle_async
    else:

        def report_then_handle(connection: Any, error: Exception) -> Any:
            _report_failed_request(error)
            return handler(connection, error)

        wrapper = report_then_handle
    setattr(wrapper, _PATCHED, True)
    return wrapper


def _is_async_callable(obj: Any) -> bool:
    """What Starlette checks to decide whether to await a handler or run it in a thread."""
    import inspect  # Starlette has imported it: this runs once Starlette serves

    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (callable(obj) and inspect.iscoroutinefunction(obj.__call__))


def _report_failed_request(error: BaseException) -> None:
    """Capture an ``HTTPException`` whose status is a failed one (handled: a handler answers it). Never raises."""
    try:
        from starlette.exceptions import HTTPException

        if not isinstance(error, HTTPException) or getattr(error, _MARK, False):
            return
        integration = _request_integration()
        if integration is None or error.status_code not in integration.failed_request_status_codes:
            return
        get_client().capture_exception(error, handled=True, mechanism_type=MECHANISM)
        mark_reported(error)
        with contextlib.suppress(Exception):  # exceptions with __slots__ cannot be marked
            setattr(error, _MARK, True)
    except Exception:
        logger.exception("could not report an HTTPException")


# -- transaction names -------------------------------------------------------------------------------


def _name_transaction(app: Any, scope: Scope, integration: StarletteIntegration, request: RequestScope) -> None:
    """Name the request's transaction after the route ``app`` routes it to, else its path. Never raises."""
    if scope.get("type") == "lifespan":
        return
    try:
        found = _find_route(app, scope)
        if found is not None:
            route, template = found
            if integration.transaction_style == "endpoint":
                endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
                name = _qualified_name(endpoint) if endpoint is not None else None
                if name:
                    request.set_transaction_name(name, "component")
                    return
            elif template:
                request.set_transaction_name(template, "route")
                return
        if request.data is not None:
            from .._request_data import transaction_from_path

            request.set_transaction_name(transaction_from_path(request.data.path), "url")
    except Exception:
        logger.debug("could not name the transaction of a Starlette request", exc_info=True)


def _find_route(app: Any, scope: Scope) -> tuple[Any, str] | None:
    """``(route, path template)`` of the route ``app`` would route ``scope`` to, through mounts; or ``None``.

    Matches a copy of the scope against the routes as Starlette's router does, and goes
    into mounted applications and routers, adding their path to the template.
    """
    from starlette.routing import Host, Mount

    routes = getattr(app, "routes", None)
    probe: dict[str, Any] = {key: scope[key] for key in _PROBE_KEYS if key in scope}
    prefix = ""
    for _ in range(_MAX_DEPTH):
        if not routes:
            return None
        route, child = _match(routes, probe)
        if route is None:
            return None
        probe.update(child)
        original = getattr(route, "original_route", route)
        if not isinstance(original, (Mount, Host)):
            path = getattr(route, "path", None)
            return route, (prefix + path if isinstance(path, str) else "")
        if isinstance(original, Mount):
            prefix += str(getattr(route, "path", ""))
        inner = getattr(route, "routes", None)
        if not inner:  # a mounted application without routes: static files, another framework
            return route, prefix + "/{path}"
        routes = inner
    return None


def _match(routes: Iterable[Any], probe: Scope) -> tuple[Any, dict[str, Any]]:
    """The route Starlette's router picks: the first full match, else the first partial one (a 405)."""
    from starlette.routing import Match

    partial: tuple[Any, dict[str, Any]] | None = None
    for route in _candidates(routes):
        match, child = route.matches(probe)
        if match is Match.FULL:
            return route, dict(child)
        if match is Match.PARTIAL and partial is None:
            partial = route, dict(child)
    return partial if partial is not None else (None, {})


def _candidates(routes: Iterable[Any]) -> Iterable[Any]:
    """The routes to match, those of routers FastAPI includes as they are (with their prefix) too."""
    iterate = getattr(sys.modules.get("fastapi.routing"), "iter_route_contexts", None)
    if callable(iterate):
        try:
            return list(iterate(list(routes)))
        except Exception:
            logger.debug("could not list FastAPI's route contexts", exc_info=True)
    return routes


def _qualified_name(obj: object) -> str | None:
    """``module.qualname`` of a function, method or class; of its type for another object."""
    import inspect  # Starlette has imported it: this runs once Starlette serves

    while isinstance(obj, functools.partial):
        obj = obj.func
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj) else type(obj)
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if not isinstance(qualname, str) or not qualname:
        return None
    module = getattr(target, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and module else qualname


# -- the authenticated user ----------------------------------------------------------------------------


def _add_authenticated_user(event: Event) -> None:
    """Fill the event's user from ``scope["user"]`` (``AuthenticationMiddleware``) when it names nobody."""
    handling = _handling.get()
    if handling is None:
        return
    authenticated = handling.connection.get("user")
    if authenticated is None or _attribute(authenticated, "is_authenticated") is not True:
        return
    user = event.get("user")
    user = dict(user) if isinstance(user, dict) else {}
    if any(user.get(field) for field in _USER_FIELDS):
        return  # the application said who the user is
    found = {
        "id": _attribute(authenticated, "identity") or _attribute(authenticated, "id"),
        "username": _attribute(authenticated, "username") or _attribute(authenticated, "display_name"),
        "email": _attribute(authenticated, "email"),
    }
    for field, value in found.items():
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            user[field] = str(value)[:256]
    if any(user.get(field) for field in _USER_FIELDS):
        event["user"] = user


def _attribute(obj: object, name: str) -> object:
    """``obj.name``, or ``None`` when reading it fails (``BaseUser.identity`` raises ``NotImplementedError``)."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


# -- options ---------------------------------------------------------------------------------------


def _status_codes(codes: object) -> frozenset[int]:
    """``failed_request_status_codes`` as a frozenset; ``TypeError``/``ValueError`` for what it cannot be."""
    if isinstance(codes, (str, bytes, Mapping)) or not isinstance(codes, Iterable):
        raise TypeError("failed_request_status_codes must be a collection of HTTP status codes, e.g. range(500, 600)")
    if isinstance(codes, range) and codes and not 100 <= min(codes[0], codes[-1]) <= max(codes[0], codes[-1]) <= 599:
        raise ValueError(f"failed_request_status_codes must be between 100 and 599, not {codes!r}")
    found: set[int] = set()
    for count, code in enumerate(codes):
        if count >= _MAX_STATUS_CODES:
            raise ValueError(f"failed_request_status_codes: more than {_MAX_STATUS_CODES} values")
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"failed_request_status_codes must hold integers, not {type(code).__name__}")
        if not 100 <= code <= 599:
            raise ValueError(f"failed_request_status_codes must be between 100 and 599, not {code}")
        found.add(code)
    return frozenset(found)
