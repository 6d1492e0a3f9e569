"""The command-line tool: ``demo`` and ``serve``."""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from collections.abc import Callable, Sequence

from . import _api, _context
from ._attachment import Attachment
from ._version import __version__

__all__ = ["main"]


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


def demo(out: Callable[[str], None] = print) -> int:
    """Send a feedback with attachments to an embedded local receiver and print what arrived."""
    from .server import LocalReceiver

    with LocalReceiver() as receiver:
        out(f"local receiver listening on {receiver.url}")
        out(f"DSN: {receiver.dsn}\n")
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
        ok = any(fb.event_id == feedback_id for fb in store.list_feedback())
    out("\ndemo " + ("succeeded" if ok else "FAILED: the feedback did not arrive"))
    return 0 if ok else 1


def serve(host: str, port: int, database: str) -> int:
    """Run the local receiver until interrupted."""
    from .server import serve as serve_forever

    serve_forever(host=host, port=port, database=database)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sentry_feedback`` and the ``sentry-feedback`` command."""
    parser = argparse.ArgumentParser(prog="sentry-feedback", description="sentry-feedback command-line tool")
    parser.add_argument("--version", action="version", version=f"sentry-feedback {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="send a feedback with attachments to an embedded local receiver")
    serve_parser = commands.add_parser("serve", help="run the local receiver (stores feedback in SQLite)")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8969)
    serve_parser.add_argument("--database", default="sentry-feedback.sqlite3")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(lambda text: print(text, flush=True))
    return serve(args.host, args.port, args.database)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
