"""Envelopes: the wire format, written and parsed.

An envelope is a JSON header line followed by items; each item is a JSON header line,
a newline, the payload bytes and a newline. Every item we write carries an explicit
``length`` so any payload (binary attachments included) is safe.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _serialize
from ._attachment import Attachment
from ._client_reports import DiscardReason
from .exceptions import AttachmentReadError, EnvelopeParseError

__all__ = ["Envelope", "EnvelopeItem"]

_CATEGORIES = {
    "event": "error",
    "feedback": "feedback",
    "attachment": "attachment",
    "client_report": "internal",
    "session": "session",
    "sessions": "session",
    "transaction": "transaction",
    "span": "span",
    "log": "log_item",
    "profile": "profile",
    "replay_event": "replay",
    "replay_recording": "replay",
    "check_in": "monitor",
    "user_report": "default",
}


def data_category(item_type: str) -> str:
    """The rate-limit / client-report data category of an item type (``default`` if unknown)."""
    return _CATEGORIES.get(item_type, "default")


class EnvelopeItem:
    """One item of an envelope: a header dict and a payload.

    Items made by the SDK are lazy: an event is serialized and an attachment file is
    read only when :attr:`payload` is first used, which happens on the background
    thread. :meth:`payload` may therefore raise ``OSError`` for an unreadable file.
    """

    __slots__ = ("_attachment", "_json", "_payload", "_prepare", "headers")

    def __init__(
        self,
        headers: dict[str, Any],
        payload: bytes | None = None,
        *,
        json_payload: Any = None,
        attachment: Attachment | None = None,
        prepare: Callable[[Any], None] | None = None,
    ) -> None:
        if not isinstance(headers.get("type"), str):
            raise ValueError("an envelope item header needs a string 'type'")
        self.headers = headers
        self._payload = payload
        self._json = json_payload
        self._attachment = attachment
        self._prepare = prepare

    @classmethod
    def from_json(
        cls, item_type: str, payload: Any, *, prepare: Callable[[Any], None] | None = None, **headers: Any
    ) -> EnvelopeItem:
        """An item whose payload is ``payload`` serialized as JSON (lazily).

        ``prepare(payload)`` runs once, in place, before the payload is first read or
        serialized: the client uses it to scrub events on the background thread.
        """
        return cls({"type": item_type, **headers}, json_payload=payload, prepare=prepare)

    def _run_prepare(self) -> None:
        prepare, self._prepare = self._prepare, None
        if prepare is not None:
            prepare(self._json)

    @classmethod
    def from_attachment(cls, attachment: Attachment) -> EnvelopeItem:
        """An ``attachment`` item; a file path is read when the payload is first needed."""
        headers = {
            "type": "attachment",
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "attachment_type": attachment.attachment_type,
        }
        return cls(headers, attachment=attachment)

    @property
    def type(self) -> str:
        """The item type, e.g. ``feedback``, ``event``, ``attachment``, ``client_report``."""
        return str(self.headers["type"])

    @property
    def data_category(self) -> str:
        """The data category used for rate limits and client reports."""
        return data_category(self.type)

    @property
    def attachment(self) -> Attachment | None:
        """The :class:`Attachment` this item was made from, if any."""
        return self._attachment

    @property
    def payload(self) -> bytes:
        """The payload bytes, serializing or reading them now if needed."""
        if self._payload is None:
            if self._attachment is not None:
                self._payload = self._attachment.read()
            else:
                self._run_prepare()
                self._payload = _serialize.dumps(self._json)
        return self._payload

    def materialize(self, limit: int | None = None) -> bytes:
        """The payload, reading an attachment now with at most ``limit`` bytes accepted.

        Raises :class:`~sentry_feedback.exceptions.AttachmentReadError` for an attachment
        that cannot be read within the limit (a payload already in memory included).
        """
        if self._payload is None and self._attachment is not None:
            self._payload = self._attachment.read(limit)
            return self._payload
        payload = self.payload
        if limit is not None and self.type == "attachment" and len(payload) > limit:
            raise AttachmentReadError(
                f"larger than max_attachment_size ({len(payload)} > {limit} bytes)",
                reason=DiscardReason.INVALID,
                quantity=len(payload),
            )
        return payload

    def quantity(self) -> int:
        """How much this item counts for in client reports: bytes for attachments (1 when unknown), else 1."""
        if self.data_category != "attachment":
            return 1
        if self._payload is not None:
            return len(self._payload)
        if self._attachment is not None:
            return self._attachment.counted_size()
        return 0

    def get_json(self) -> Any:
        """The payload as a JSON value (the event dict for ``event``/``feedback`` items)."""
        if self._json is not None:
            self._run_prepare()
            return self._json
        try:
            return json.loads(self.payload)
        except ValueError as exc:
            raise EnvelopeParseError(f"{self.type} item payload is not JSON: {exc}") from None
        except RecursionError:
            raise EnvelopeParseError(f"{self.type} item payload is nested too deeply") from None

    def __repr__(self) -> str:
        return f"EnvelopeItem(type={self.type!r}, headers={self.headers!r})"


class Envelope:
    """An envelope: ``headers`` (``event_id``, ``sent_at``, ``sdk``, ``trace``, ...) and ``items``."""

    __slots__ = ("headers", "items")

    def __init__(self, headers: dict[str, Any] | None = None, items: Iterable[EnvelopeItem] = ()) -> None:
        self.headers: dict[str, Any] = dict(headers or {})
        self.items: list[EnvelopeItem] = list(items)

    def add_item(self, item: EnvelopeItem) -> None:
        """Append ``item``."""
        self.items.append(item)

    def __iter__(self) -> Iterator[EnvelopeItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def event_id(self) -> str | None:
        """The ``event_id`` header, if any."""
        value = self.headers.get("event_id")
        return value if isinstance(value, str) else None

    def items_of_type(self, item_type: str) -> list[EnvelopeItem]:
        """All items whose type is ``item_type``."""
        return [item for item in self.items if item.type == item_type]

    def serialize(self) -> bytes:
        """The envelope's wire bytes. Lazy payloads are materialized (and may raise ``OSError``)."""
        out = io.BytesIO()
        out.write(_serialize.dumps(self.headers))
        for item in self.items:
            payload = item.payload
            out.write(b"\n")
            out.write(_serialize.dumps({**item.headers, "length": len(payload)}))
            out.write(b"\n")
            out.write(payload)
        out.write(b"\n")
        return out.getvalue()

    @classmethod
    def parse(cls, data: bytes, *, max_items: int | None = None) -> Envelope:
        """Parse wire bytes; raise :class:`EnvelopeParseError` saying what is wrong and where.

        With ``max_items``, an envelope with more items is refused as soon as the one too
        many is reached (a server's bound on the work one request may cause).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EnvelopeParseError("an envelope must be bytes")
        buf = bytes(data)
        end = _line_end(buf, 0)
        headers = _json_object(buf[:end], "envelope header")
        envelope = cls(headers)
        pos = end + 1
        while pos < len(buf):
            end = _line_end(buf, pos)
            line = buf[pos:end]
            if not line.strip():
                if buf[end:].strip():
                    raise EnvelopeParseError(f"empty item header at byte {pos}")
                break
            if max_items is not None and len(envelope.items) >= max_items:
                raise EnvelopeParseError(f"envelope has more than {max_items} items")
            item_headers = _json_object(line, f"item header at byte {pos}")
            item_type = item_headers.get("type")
            if not isinstance(item_type, str) or not item_type:
                raise EnvelopeParseError(f"item header at byte {pos} has no string 'type'")
            pos = end + 1
            length = item_headers.get("length")
            if length is not None:
                if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                    raise EnvelopeParseError(f"{item_type} item has an invalid length {length!r}")
                if pos + length > len(buf):
                    raise EnvelopeParseError(
                        f"{item_type} item is truncated: length {length}, {max(len(buf) - pos, 0)} bytes left"
                    )
                payload = buf[pos : pos + length]
                pos += length
                if pos < len(buf):
                    if buf[pos : pos + 1] != b"\n":
                        raise EnvelopeParseError(f"{item_type} item payload is longer than its length {length}")
                    pos += 1
            else:
                end = _line_end(buf, pos)
                payload = buf[pos:end]
                pos = end + 1
            envelope.items.append(EnvelopeItem(item_headers, payload))
        return envelope

    def __repr__(self) -> str:
        return f"Envelope(headers={self.headers!r}, items={self.items!r})"


def _line_end(buf: bytes, start: int) -> int:
    end = buf.find(b"\n", start)
    return len(buf) if end == -1 else end


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise EnvelopeParseError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise EnvelopeParseError(f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise EnvelopeParseError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value
