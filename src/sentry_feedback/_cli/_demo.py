"""``sentry-feedback demo``: the SDK, the local server and the REST API, end to end in one process."""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._output import Style

if TYPE_CHECKING:
    from ..server import LocalReceiver

__all__ = ["demo"]


def _tiny_png() -> bytes:
    """A real 8x8 PNG, so the demo's screenshot opens in any viewer."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((200, 30, 30)) * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


class _PaymentError(Exception):
    """The error the demo's checkout raises."""


def _charge_card(card_number: str) -> None:
    amount = 42.5  # a local variable the error event shows
    raise _PaymentError(f"card declined while charging {amount} EUR")


def _send_with_sdk(receiver: LocalReceiver, out: Callable[[str], None]) -> str:
    from .. import _api, _context
    from .._attachment import Attachment

    client = _api.init(dsn=receiver.dsn, release="demo-shop@1.0.0", environment="demo")
    try:
        _api.set_user({"id": "42", "email": "jane@example.com"})
        _api.set_tag("page", "checkout")
        _api.add_breadcrumb(category="ui.click", message="clicked 'Pay now'")
        try:
            _charge_card("4000 0000 0000 0002")
        except _PaymentError:
            error_id = _api.capture_exception()
        out(f"captured an error event            {error_id}")
        client.flush(5)  # the error first, so the feedback can link to it
        feedback_id = _api.send_feedback(
            "The pay button does nothing after I enter my card.",
            email="jane@example.com",
            name="Jane",
            url="https://shop.example.com/checkout",
            associated_event_id=_api.last_event_id(),
            attachments=[
                Attachment(_tiny_png(), filename="screenshot.png"),
                Attachment(b"12:00:01 INFO cart ok\n12:00:02 ERROR card declined\n", filename="app.log"),
            ],
            timeout=10,
        )
        out(f"sent a feedback (server answered)   {feedback_id}\n")
        client.flush(5)
    finally:
        client.close(5)
        _context.set_client(None)
    return feedback_id


def _show_store(receiver: LocalReceiver, out: Callable[[str], None]) -> None:
    store = receiver.store
    out(f"the receiver stored {store.count_envelopes()} envelope(s):")
    for fb in store.list_feedback():
        out(f"  feedback {fb.event_id}")
        out(f"    message:             {fb.message}")
        out(f"    from:                {fb.name} <{fb.contact_email}>")
        out(f"    url:                 {fb.url}")
        out(f"    associated error:    {fb.associated_event_id}")
        out(f"    release/environment: {fb.release} / {fb.environment}")
        out(f"    tags:                {fb.tags}")
        out(f"    trace id:            {fb.trace_id}")
        for att in store.list_attachments(fb.event_id):
            out(f"    attachment:          {att.filename} ({att.content_type}, {att.size} bytes)")
    for event in store.list_events():
        exception = (event.data.get("exception") or {}).get("values") or [{}]
        frame = ((exception[-1].get("stacktrace") or {}).get("frames") or [{}])[-1]
        out(f"  {event.type} event {event.event_id}: [{event.level}] {event.message}")
        out(f"    raised in:           {frame.get('function')} ({frame.get('filename')}:{frame.get('lineno')})")
        out(f"    locals:              {frame.get('vars')}")
        trace = (event.data.get("contexts") or {}).get("trace") or {}
        out(f"    trace id:            {trace.get('trace_id')}")


def _show_api(receiver: LocalReceiver, feedback_id: str, out: Callable[[str], None], style: Style) -> bool:
    """List, resolve and list again through the REST API, as the CLI would; True when the feedback was there."""
    from ..api import FeedbackApi
    from ._browse import event_summary, table_lines

    out("\nthe REST API at work: the same as these commands against a `sentry-feedback serve`")
    out(f"  export SENTRY_URL={receiver.url} SENTRY_AUTH_TOKEN={receiver.api_token} SENTRY_ORG={receiver.org}")
    with FeedbackApi(receiver.url, receiver.api_token, receiver.org) as api:
        out("\n$ sentry-feedback list")
        items = list(api.list(per_page=10, limit=10))
        for line in table_lines(items, style):
            out(line)
        if not any(item.id == feedback_id for item in items):
            return False
        out(f"\n$ sentry-feedback resolve {feedback_id}")
        api.resolve(feedback_id)
        out(f"resolved {feedback_id}")
        out("\n$ sentry-feedback list --status resolved")
        for line in table_lines(api.list(query="status:resolved", limit=10), style):
            out(line)
        feedback = api.get(feedback_id)
        out(f"\n$ sentry-feedback show {feedback_id}   # (the end of it)")
        for error_id in feedback.error_ids[:1]:
            out(f"linked error {error_id}: {event_summary(api.event(error_id, project=feedback.project))}")
        attachments = api.attachments(feedback_id)
        out(f"\n$ sentry-feedback download {feedback_id}   # would save:")
        for att in attachments:
            out(f"  {att.name} ({att.mimetype}, {att.size} bytes)")
    out("\n(the demo's server stops now; `sentry-feedback serve` runs one that keeps your feedback)")
    return True


def demo(out: Callable[[str], None] = print) -> int:
    """Send an error and a feedback with attachments to an embedded server; show what arrived and the API."""
    from ..api import ApiError
    from ..server import LocalReceiver
    from ._serve import DEFAULT_PORT

    style = Style.for_stream(sys.stdout)
    with LocalReceiver() as receiver:
        out(f"local receiver listening on {receiver.url}")
        out(f"DSN: {receiver.dsn}\n")
        feedback_id = _send_with_sdk(receiver, out)
        _show_store(receiver, out)
        stored = any(fb.event_id == feedback_id for fb in receiver.store.list_feedback())
        if not stored:
            out("\ndemo FAILED: the feedback did not arrive")
            return 1
        try:
            listed = _show_api(receiver, feedback_id, out, style)
        except ApiError as exc:
            out(f"\ndemo FAILED: the REST API answered {exc.status}: {exc.detail}")
            return 1
    if not listed:
        out("\ndemo FAILED: the REST API did not list the feedback")
        return 1
    out("\ndemo succeeded")
    out(f"the inbox: `sentry-feedback serve`, then open http://127.0.0.1:{DEFAULT_PORT}/ (serve prints a sign-in link)")
    return 0
