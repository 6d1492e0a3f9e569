"""Flask: the WSGI middleware for every Flask application, route names and unhandled errors (``flask``).

>>> import sentry_feedback
>>> from sentry_feedback.integrations.flask import FlaskIntegration
>>> sentry_feedback.init(dsn=..., integrations=[FlaskIntegration()])

See the "Flask" page of the documentation. This module imports Flask (and the SDK's request
handling) only when the integration is set up.
"""

from __future__ import annotations

import sys

from .._context import get_client
from .._framework import FrameworkIntegration
from .._log import logger
from .logging import ignore_logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, ClassVar

    from .._client import Client
    from .._types import Event, Hint

__all__ = ["FlaskIntegration"]


#: Set on ``Flask.__call__`` once it is wrapped.
_PATCHED = "__sentry_feedback_patched__"


class FlaskIntegration(FrameworkIntegration):
    """Every Flask application runs in the WSGI middleware, with Flask's route and errors.

    * ``Flask.__call__`` is wrapped once per process: each request of every application
      gets what :class:`~sentry_feedback.wsgi.SentryWsgiMiddleware` gives (its own
      isolation scope, the trace, the request data). An application wrapped by hand as
      well is not handled twice.
    * At the start of a request (``request_started``) the transaction is named after the
      matched URL rule (``transaction_style="url"``, the default, source ``route``, e.g.
      ``/users/<int:user_id>``) or the endpoint (``"endpoint"``, source ``component``,
      e.g. ``users.show``). A request that matched no rule keeps its path (source ``url``).
    * An exception Flask handles as a 500 (``got_request_exception``) is captured once,
      with mechanism ``{"type": "flask", "handled": false}``; neither the WSGI layer nor
      the record Flask logs for it report it again. ``last_event_id()`` gives its id in an
      ``@app.errorhandler(500)``.
    * With ``send_default_pii``, ``user.ip_address`` is Flask's ``request.remote_addr``
      when the WSGI layer found no client address, and in an application that uses
      Flask-Login the signed-in user's ``id`` (``get_id()``), ``email`` and ``username``
      fill the keys the scope's user leaves empty.
    * Werkzeug's request log lines (the ``werkzeug`` logger) are not turned into
      breadcrumbs or events.

    ``use_x_forwarded_for`` and ``max_request_body_size`` are the middleware's options.
    """

    identifier: ClassVar[str] = "flask"
    patches: ClassVar[str | None] = "flask"

    transaction_styles: ClassVar[tuple[str, ...]] = ("url", "endpoint")

    def setup_once(self) -> None:
        """Wrap ``Flask.__call__``, connect to Flask's signals, ignore the ``werkzeug`` logger."""
        import flask

        from .._web import active_request

        ignore_logger("werkzeug")
        flask.request_started.connect(_request_started, weak=False)
        flask.got_request_exception.connect(_got_request_exception, weak=False)
        original = flask.Flask.__call__
        if getattr(original, _PATCHED, False):
            return

        def __call__(self: flask.Flask, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            integration = get_client().get_integration(FlaskIntegration)
            if integration is None or active_request() is not None:
                return original(self, environ, start_response)
            from ..wsgi import SentryWsgiMiddleware

            def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
                return original(self, environ, start_response)

            middleware = SentryWsgiMiddleware(
                application,
                use_x_forwarded_for=integration.use_x_forwarded_for,
                max_request_body_size=integration.max_request_body_size,
            )
            return middleware(environ, start_response)

        setattr(__call__, _PATCHED, True)
        __call__.__wrapped__ = original  # type: ignore[attr-defined]
        flask.Flask.__call__ = __call__  # type: ignore[method-assign]

    def setup(self, client: Client) -> None:
        """Register the client's event processor (the request's user with ``send_default_pii``)."""

        def process(event: Event, hint: Hint) -> Event | None:
            if client.options.send_default_pii:
                try:
                    _add_user(event)
                except Exception:
                    logger.debug("could not add the request's user", exc_info=True)
            return event

        client.add_event_processor(process)


def _request_started(sender: object, **extra: object) -> None:
    """Name the request's transaction after Flask's URL rule or endpoint."""
    from .._web import active_request

    try:
        integration = get_client().get_integration(FlaskIntegration)
        request = active_request()
        if integration is None or request is None:
            return
        from flask import request as flask_request

        if integration.transaction_style == "endpoint":
            endpoint = flask_request.endpoint
            if endpoint:
                request.set_transaction_name(endpoint, "component")
        else:
            rule = flask_request.url_rule
            if rule is not None and rule.rule:
                request.set_transaction_name(rule.rule, "route")
    except Exception:
        logger.exception("could not name the transaction of a Flask request")


def _got_request_exception(sender: object, exception: BaseException | None = None, **extra: object) -> None:
    """Capture the exception Flask is about to answer with a 500."""
    if exception is None or get_client().get_integration(FlaskIntegration) is None:
        return
    from .._web import capture_unhandled

    capture_unhandled(exception, "flask")  # once; Flask's log record of it is no second event


def _add_user(event: Event) -> None:
    """The client's address and Flask-Login's signed-in user, under what the event's user already says."""
    from flask import has_request_context
    from flask import request as flask_request

    if not has_request_context():
        return
    from .._web import active_request

    found: dict[str, object] = {}
    request = active_request()
    if request is None or request.data is None or not request.data.client_ip:  # else the WSGI layer adds it
        from .._request_data import client_ip

        address = client_ip(flask_request.remote_addr)  # only a valid address, as the WSGI layer takes it
        if address:
            found["ip_address"] = address
    login = sys.modules.get("flask_login")  # only in applications that use it; never imported here
    current_user = getattr(login, "current_user", None) if login is not None else None
    if current_user is not None and getattr(current_user, "is_authenticated", False) is True:
        user_id = current_user.get_id()
        if user_id is not None:
            found["id"] = str(user_id)
        for key in ("email", "username"):
            value = getattr(current_user, key, None)
            if isinstance(value, str) and value:
                found[key] = value
    if not found:
        return
    user = event.get("user")
    user = dict(user) if isinstance(user, dict) else {}
    for key, value in found.items():
        if not user.get(key):
            user[key] = value
    event["user"] = user
