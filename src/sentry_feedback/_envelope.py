"""Envelopes: the wire format, written and parsed.

An envelope is a JSON header line followed by items; each item is a JSON header line,
a newline, the payload bytes and a newline. Every item we write carries an explicit
``length`` so any payload (binary attachments included) is safe.
"""

from __future__ import annotations

import os

from . import _serialize
from ._attachment import BLOCK, SMALL_FILE, Attachment, FileRegion
from ._client_reports import DiscardReason
from .exceptions import AttachmentReadError, EnvelopeParseError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import IO, Any

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
    A large file is never read whole: once :meth:`materialize` has checked it, its
    bytes are read block by block while the envelope is written (:meth:`chunks`).
    """

    __slots__ = ("_attachment", "_json", "_payload", "_prepare", "_region", "headers")

    def __init__(
        self,
        headers: dict[str, Any],
        payload: bytes | None = None,
        *,
        json_payload: Any = None,
        attachment: Attachment | None = None,
        prepare: Callable[[Any], None] | None = None,
        region: FileRegion | None = None,
    ) -> None:
        if not isinstance(headers.get("type"), str):
            raise ValueError("an envelope item header needs a string 'type'")
        self.headers = headers
        self._payload = payload
        self._json = json_payload
        self._attachment = attachment
        self._prepare = prepare
        self._region = region

    @classmethod
    def from_json(
        cls,
        item_type: str,
        payload: Any,
        *,
        prepare: Callable[[Any], None] | None = None,
        **headers: Any,
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
        """The payload bytes, serializing or reading them now if needed (a large file: all of it)."""
        if self._payload is None:
            if self._region is not None:
                return self._region.read()  # not kept: it can be as large as the file
            if self._attachment is not None:
                self._payload = self._attachment.read()
            else:
                self._run_prepare()
                self._payload = _serialize.dumps(self._json)
        return self._payload

    @property
    def length(self) -> int:
        """The payload's size in bytes (a large file is not read for it once :meth:`materialize` has run)."""
        if self._payload is None and self._region is not None:
            return self._region.length
        return len(self.payload)

    @property
    def streamed(self) -> bool:
        """Whether the payload is read from a file while it is written, rather than held in memory."""
        return self._payload is None and self._region is not None

    def chunks(self, block: int = BLOCK) -> Iterator[bytes | memoryview]:
        """The payload in pieces of at most ``block`` bytes, a large file read as it goes."""
        if self._payload is None and self._region is not None:
            yield from self._region.blocks(block)
            return
        payload = self.payload
        if len(payload) <= block:
            yield payload
            return
        view = memoryview(payload)
        for start in range(0, len(payload), block):
            yield view[start : start + block]

    def materialize(self, limit: int | None = None) -> None:
        """Make the payload ready to write: serialize an event, check an attachment against ``limit``.

        A small file is read now; a large one is opened and checked, and read only while the
        envelope is written. Raises :class:`~sentry_feedback.exceptions.AttachmentReadError`
        for an attachment that cannot be read within the limit (a payload already in memory
        included).
        """
        if self._payload is None and self._region is None and self._attachment is not None:
            contents = self._attachment._contents(limit)
            if isinstance(contents, FileRegion):
                self._region = contents
            else:
                self._payload = contents
            return
        size = self.length
        if limit is not None and self.type == "attachment" and size > limit:
            raise AttachmentReadError(
                f"larger than max_attachment_size ({size} > {limit} bytes)",
                reason=DiscardReason.INVALID,
                quantity=size,
            )

    def quantity(self) -> int:
        """How much this item counts for in client reports: bytes for attachments (1 when unknown), else 1."""
        if self.data_category != "attachment":
            return 1
        if self._payload is not None:
            return len(self._payload)
        if self._region is not None:
            return self._region.length
        if self._attachment is not None:
            return self._attachment.counted_size()
        try:  # a JSON payload not serialized yet: its size once it is
            return len(self.payload)
        except Exception:  # (its ``prepare`` failed: the size is unknown)
            return 1

    def span_quantity(self) -> int:
        """How many spans a ``transaction`` item counts for in client reports: its spans plus one (its own)."""
        try:
            value = self.get_json()
        except Exception:
            return 1
        spans = value.get("spans") if isinstance(value, dict) else None
        return (len(spans) if isinstance(spans, list) else 0) + 1

    def get_json(self) -> Any:
        """The payload as a JSON value (the event dict for ``event``/``feedback`` items)."""
        if self._json is not None:
            self._run_prepare()
            return self._json
        import json

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

    def chunks(self, block: int = BLOCK) -> Iterator[bytes | memoryview]:
        """The envelope's wire bytes in pieces of about ``block`` bytes, large files read as they go.

        Headers and small payloads are gathered into one piece; a large payload is handed
        out in slices (of the bytes in memory, or read from its file), so that the whole
        envelope is never in memory at once. Lazy payloads are materialized; a file that
        cannot be read raises :class:`~sentry_feedback.exceptions.AttachmentReadError`
        (an ``OSError``) from the iteration, and :class:`PayloadReadError` says which item.
        """
        pending = bytearray(_serialize.dumps(self.headers))
        for item in self.items:
            try:
                length = item.length
                pending += b"\n"
                pending += _serialize.dumps({**item.headers, "length": length})
                pending += b"\n"
                if not item.streamed and length <= block - len(pending):
                    pending += item.payload
                    continue
                if pending:
                    yield bytes(pending)
                    pending.clear()
                yield from item.chunks(block)
            except AttachmentReadError as exc:
                raise PayloadReadError(item, exc) from exc
        pending += b"\n"
        yield bytes(pending)

    def serialize(self) -> bytes:
        """The envelope's wire bytes. Lazy payloads are materialized (and may raise ``OSError``)."""
        try:
            return b"".join(self.chunks())
        except PayloadReadError as exc:
            raise exc.error from None

    @classmethod
    def parse(cls, data: bytes, *, max_items: int | None = None) -> Envelope:
        """Parse wire bytes; raise :class:`EnvelopeParseError` saying what is wrong and where.

        With ``max_items``, an envelope with more items is refused as soon as the one too
        many is reached (a server's bound on the work one request may cause).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EnvelopeParseError("an envelope must be bytes")
        return cls._parse(_InMemory(bytes(data)), max_items)

    @classmethod
    def parse_file(cls, path: str, *, inline: int = SMALL_FILE, max_items: int | None = None) -> Envelope:
        """Parse the envelope in the file at ``path`` like :meth:`parse`, without reading large payloads.

        A payload of more than ``inline`` bytes stays in the file (a :class:`FileRegion`,
        read while the envelope is written); the file must keep its content while the
        envelope is in use. Raises :class:`EnvelopeParseError`, or ``OSError`` when the
        file cannot be read.
        """
        with open(path, "rb") as fh:
            return cls._parse(_InFile(fh, path, inline), max_items)

    @classmethod
    def _parse(cls, source: _InMemory | _InFile, max_items: int | None) -> Envelope:
        size = source.size
        line, end = source.line(0)
        envelope = cls(_json_object(line, "envelope header"))
        pos = end + 1
        while pos < size:
            line, end = source.line(pos)
            if not line.strip():
                if not source.blank_from(end):
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
                if pos + length > size:
                    raise EnvelopeParseError(
                        f"{item_type} item is truncated: length {length}, {max(size - pos, 0)} bytes left"
                    )
                payload = source.payload(pos, length)
                pos += length
                if pos < size:
                    if source.byte(pos) != b"\n":
                        raise EnvelopeParseError(f"{item_type} item payload is longer than its length {length}")
                    pos += 1
            else:
                payload, end = source.line(pos)
                pos = end + 1
            if isinstance(payload, FileRegion):
                envelope.items.append(EnvelopeItem(item_headers, region=payload))
            else:
                envelope.items.append(EnvelopeItem(item_headers, payload))
        return envelope

    def __repr__(self) -> str:
        return f"Envelope(headers={self.headers!r}, items={self.items!r})"


class PayloadReadError(Exception):
    """An item's payload could not be read while its envelope was written.

    Deliberately not an ``OSError``: an HTTP library would take it for a network failure.
    ``item`` is the item, ``error`` the :class:`AttachmentReadError` that says why.
    """

    def __init__(self, item: EnvelopeItem, error: AttachmentReadError) -> None:
        super().__init__(str(error))
        self.item = item
        self.error = error


class _InMemory:
    """The bytes :meth:`Envelope._parse` reads, held in memory."""

    __slots__ = ("buf", "size")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.size = len(buf)

    def line(self, start: int) -> tuple[bytes, int]:
        """The line from ``start`` (without its newline) and where it ends."""
        end = self.buf.find(b"\n", start)
        end = self.size if end == -1 else end
        return self.buf[start:end], end

    def blank_from(self, start: int) -> bool:
        """Whether only whitespace follows ``start``."""
        return not self.buf[start:].strip()

    def payload(self, start: int, length: int) -> bytes | FileRegion:
        """``length`` bytes from ``start``."""
        return self.buf[start : start + length]

    def byte(self, at: int) -> bytes:
        """The byte at ``at``."""
        return self.buf[at : at + 1]


class _InFile:
    """The bytes :meth:`Envelope._parse` reads, from a file; large payloads are left in it."""

    __slots__ = ("fh", "inline", "path", "size")

    def __init__(self, fh: IO[bytes], path: str, inline: int) -> None:
        self.fh = fh
        self.path = path
        self.inline = inline
        self.size = os.fstat(fh.fileno()).st_size

    def line(self, start: int) -> tuple[bytes, int]:
        """The line from ``start`` (without its newline) and where it ends."""
        self.fh.seek(start)
        line = self.fh.readline()
        if line.endswith(b"\n"):
            line = line[:-1]
        return line, start + len(line)

    def blank_from(self, start: int) -> bool:
        """Whether only whitespace follows ``start``."""
        self.fh.seek(start)
        while block := self.fh.read(BLOCK):
            if block.strip():
                return False
        return True

    def payload(self, start: int, length: int) -> bytes | FileRegion:
        """``length`` bytes from ``start``; more than ``inline`` stay in the file."""
        if length > self.inline:
            return FileRegion(self.path, start, length)
        self.fh.seek(start)
        return self.fh.read(length)

    def byte(self, at: int) -> bytes:
        """The byte at ``at``."""
        self.fh.seek(at)
        return self.fh.read(1)


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(line)
    except ValueError as exc:
        raise EnvelopeParseError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise EnvelopeParseError(f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise EnvelopeParseError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value
