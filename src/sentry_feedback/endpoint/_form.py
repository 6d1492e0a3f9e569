"""The embeddable feedback form: an HTML snippet, and its script and style sheet shipped in the package."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Iterable
from importlib import resources

from .._feedback import MAX_MESSAGE_LENGTH, normalize_event_id
from ..exceptions import InvalidFeedbackError
from ._options import DEFAULT_ALLOWED_CONTENT_TYPES
from ._responses import EndpointResponse

__all__ = ["feedback_form_html"]

logger = logging.getLogger("sentry_feedback")

#: The files the endpoint serves under its path, and their media types.
STATIC_FILES = {"form.js": "text/javascript; charset=utf-8", "form.css": "text/css; charset=utf-8"}
#: File name extensions offered in the file picker for the media types the endpoint accepts.
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg,.jpeg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "text/plain": ".txt,.log",
    "text/x-log": ".log",
    "application/json": ".json",
}


@functools.lru_cache(maxsize=len(STATIC_FILES))
def _read_static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


def static_file(name: str) -> EndpointResponse:
    """The answer for ``GET .../form.js`` or ``.../form.css``."""
    body = _read_static(name)
    headers = (
        ("Content-Type", STATIC_FILES[name]),
        ("Cache-Control", "public, max-age=3600"),
        ("X-Content-Type-Options", "nosniff"),
    )
    return EndpointResponse(200, headers, body)


def feedback_form_html(
    action: str = "/feedback",
    *,
    associated_event_id: str | None = None,
    script_src: str | None = None,
    stylesheet_href: str | None = None,
    nonce: str | None = None,
    id_prefix: str = "sentry-feedback",
    max_message_length: int = MAX_MESSAGE_LENGTH,
    max_attachments: int = 5,
    accept: Iterable[str] = DEFAULT_ALLOWED_CONTENT_TYPES,
    include_trace: bool = True,
    heading: str = "Tell us what happened",
) -> str:
    """The HTML of a feedback form that posts to ``action``, and the script that sends it without leaving the page.

    Put it in an error page with the error's id, so that the feedback is linked to it::

        feedback_form_html("/feedback", associated_event_id=sentry_feedback.last_event_id())

    Without JavaScript the browser posts the form (``multipart/form-data``) and shows the
    endpoint's answer page; with it, ``form.js`` posts it with ``fetch`` and shows the answer in
    the form. ``script_src`` and ``stylesheet_href`` default to ``{action}/form.js`` and
    ``{action}/form.css`` (served by the endpoint); ``""`` leaves the tag out. ``nonce`` goes
    on both tags, for a Content Security Policy with nonces. ``include_trace`` adds the
    current trace (``sentry-trace``, ``baggage``), so the feedback continues the error page's
    trace. Every value is HTML-escaped; an ``associated_event_id`` that is not an event id is
    left out (and logged), never raised.
    """
    base = action.rstrip("/") or ""
    script = f"{base}/form.js" if script_src is None else script_src
    stylesheet = f"{base}/form.css" if stylesheet_href is None else stylesheet_href
    event_id = _event_id(associated_event_id)
    prefix = html.escape(id_prefix, quote=True)
    nonce_attribute = f' nonce="{html.escape(nonce, quote=True)}"' if nonce else ""
    hidden = [("associated_event_id", event_id or ""), ("url", "")]
    if include_trace:
        hidden += _trace_fields()
    lines: list[str] = []
    if stylesheet:
        lines.append(f'<link rel="stylesheet" href="{_attr(stylesheet)}"{nonce_attribute}>')
    lines.append(
        f'<form class="sentry-feedback" id="{prefix}" method="post" action="{_attr(action)}" '
        f'enctype="multipart/form-data" accept-charset="utf-8" data-sentry-feedback>'
    )
    lines.append(f'  <h2 class="sentry-feedback-heading" id="{prefix}-heading">{html.escape(heading)}</h2>')
    for name, value in hidden:
        lines.append(f'  <input type="hidden" name="{name}" value="{_attr(value)}">')
    lines.append(
        _field(
            prefix,
            "message",
            "What were you doing when it happened?",
            f'<textarea id="{prefix}-message" name="message" rows="5" required '
            f'maxlength="{int(max_message_length)}"></textarea>',
        )
    )
    lines.append(
        _field(
            prefix,
            "name",
            "Your name (optional)",
            f'<input id="{prefix}-name" name="name" type="text" autocomplete="name" maxlength="256">',
        )
    )
    lines.append(
        _field(
            prefix,
            "email",
            "Your email, if we may answer (optional)",
            f'<input id="{prefix}-email" name="email" type="email" autocomplete="email" maxlength="254">',
        )
    )
    if max_attachments > 0:
        multiple = " multiple" if max_attachments > 1 else ""
        label = "A screenshot or log file (optional)" if max_attachments == 1 else "Screenshots or log files (optional)"
        lines.append(
            _field(
                prefix,
                "attachments",
                label,
                f'<input id="{prefix}-attachments" name="attachments" type="file"{multiple} '
                f'accept="{_attr(_accept(accept))}" data-max-files="{int(max_attachments)}">',
            )
        )
    lines.append('  <p class="sentry-feedback-actions"><button type="submit">Send feedback</button></p>')
    lines.append(
        f'  <p class="sentry-feedback-status" id="{prefix}-status" role="status" aria-live="polite" '
        "data-sentry-feedback-status></p>"
    )
    lines.append("</form>")
    if script:
        lines.append(f'<script src="{_attr(script)}" defer{nonce_attribute}></script>')
    return "\n".join(lines) + "\n"


def _field(prefix: str, name: str, label: str, control: str) -> str:
    return (
        f'  <p class="sentry-feedback-field sentry-feedback-{name}">'
        f'<label for="{prefix}-{name}">{html.escape(label)}</label>\n    {control}</p>'
    )


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _event_id(value: object) -> str | None:
    if value is None or value == "":
        return None
    try:
        return normalize_event_id(value, "associated_event_id")
    except InvalidFeedbackError:
        logger.warning("feedback_form_html: %r is not an event id; the form is not linked to an error", value)
        return None


def _trace_fields() -> list[tuple[str, str]]:
    """The current trace, to continue in the request that posts the form; none when it cannot be read."""
    from .._api import get_baggage, get_traceparent

    try:
        return [("sentry_trace", get_traceparent()), ("baggage", get_baggage())]
    except Exception:
        logger.exception("feedback_form_html: could not read the current trace")
        return []


def _accept(media_types: Iterable[str]) -> str:
    """The file picker's ``accept``: the media types and the extensions they come with."""
    found: list[str] = []
    for media in media_types:
        for entry in (media, *_EXTENSIONS.get(media, "").split(",")):
            if entry and entry not in found:
                found.append(entry)
    return ",".join(found)
