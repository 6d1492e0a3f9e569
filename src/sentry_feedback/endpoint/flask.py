"""The feedback endpoint as a Flask blueprint.

>>> from sentry_feedback.endpoint.flask import feedback_blueprint
>>> app.register_blueprint(feedback_blueprint())            # POST /feedback, GET /feedback/form.js

This module imports Flask only when a blueprint is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._endpoint import FeedbackEndpoint, mount_prefix

if TYPE_CHECKING:
    import flask

__all__ = ["feedback_blueprint"]

#: Every method goes to the endpoint, which answers 405 itself (with ``Allow``) and handles ``OPTIONS``.
_METHODS = ["GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"]


def feedback_blueprint(
    endpoint: FeedbackEndpoint | None = None, *, name: str = "sentry_feedback", url_prefix: str = "/feedback"
) -> flask.Blueprint:
    """A blueprint serving ``endpoint`` (a new :class:`FeedbackEndpoint` by default) at ``url_prefix``.

    Routes: ``url_prefix`` (and with a trailing slash) for the feedback, ``url_prefix/form.js``
    and ``url_prefix/form.css`` for the embeddable form. The view reads the request's body
    itself: do not read ``request.form`` or ``request.data`` for these URLs before it (in a
    ``before_request``). With the :class:`~sentry_feedback.integrations.flask.FlaskIntegration`
    (or the WSGI middleware) the feedback is captured in the request's scope, with the user
    the application set; without them the view opens a scope of its own.
    """
    import flask

    if endpoint is None:
        endpoint = FeedbackEndpoint()
    elif not isinstance(endpoint, FeedbackEndpoint):
        raise TypeError(f"endpoint must be a FeedbackEndpoint, not {type(endpoint).__name__}")
    prefix = mount_prefix(url_prefix)
    blueprint = flask.Blueprint(name, __name__)

    def feedback() -> flask.Response:
        response = endpoint.respond(flask.request.environ)
        return flask.Response(response.body, status=response.status, headers=list(response.headers))

    rules = [(prefix or "/", "feedback"), (f"{prefix}/form.js", "form_js"), (f"{prefix}/form.css", "form_css")]
    if prefix:
        rules.append((f"{prefix}/", "feedback_slash"))
    for rule, view_name in rules:
        blueprint.add_url_rule(rule, view_name, feedback, methods=_METHODS, provide_automatic_options=False)
    return blueprint
