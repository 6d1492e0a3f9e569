"""Reading a request body: counting it, finding the envelope header in it, and draining what is left.

The same for every entry point: ``next_chunk(size)`` gives the next piece of the body
(``b""`` at its end) whether it comes from ``wsgi.input``, a framework's request, or the
ASGI event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._answers import AnswerNow, BodyFailed, error
from ._header import HeaderReader, InvalidBody
from ._options import TunnelOptions

__all__ = ["BodyReader"]

#: Bytes asked of the client at a time.
CHUNK = 64 * 1024
#: After answering early (400, 403, 413), at most this much of the rest of the body is read and
#: thrown away, so that the client, still sending, sees the answer instead of a reset connection.
DRAIN_LIMIT = 1024 * 1024


class BodyReader(Protocol):
    """A request body: ``read(size)`` gives at most ``size`` bytes, ``b""`` at the end.

    Flask's ``request.stream``, Django's ``request``, WSGI's ``wsgi.input`` and files are.
    """

    def read(self, size: int, /) -> bytes:
        """At most ``size`` bytes of the body; ``b""`` once it has ended."""
        ...


@dataclass
class Incoming:
    """What the request's headers say, checked."""

    length: int | None
    encoding: str
    forwarded: dict[str, str]
    peer: str | None


class Reading:
    """Counts the body as it is read and finds the envelope header in it."""

    def __init__(self, incoming: Incoming, options: TunnelOptions) -> None:
        self.header = HeaderReader(incoming.encoding, options.max_header_size)
        self.length = incoming.length
        self.total = 0
        self._limit = options.max_body_size

    @property
    def complete(self) -> bool:
        """Whether all of a body of known length was read."""
        return self.length is not None and self.total >= self.length

    def wanted(self) -> int:
        """How many bytes to ask for next."""
        return CHUNK if self.length is None else max(min(CHUNK, self.length - self.total), 0)

    def check_declared(self) -> None:
        """Refuse a ``Content-Length`` past the limit before reading anything."""
        if self.length is not None and self.length > self._limit:
            raise AnswerNow(error(413, f"the body is larger than {self._limit} bytes"))
        if self.length == 0:
            raise AnswerNow(error(400, "the body is empty: an envelope starts with a header line"))

    def count(self, chunk: bytes) -> None:
        """Count ``chunk``; refuse a body past the limit or past its ``Content-Length``."""
        self.total += len(chunk)
        if self.total > self._limit:
            raise AnswerNow(error(413, f"the body is larger than {self._limit} bytes"))
        if self.length is not None and self.total > self.length:
            raise AnswerNow(error(400, "the body is longer than its Content-Length"))

    @property
    def line(self) -> bytes:
        """The envelope header line (once :meth:`add` said it is known)."""
        line = self.header.line
        assert line is not None
        return line

    def add(self, chunk: bytes) -> bool:
        """Count ``chunk`` and look for the header line in it; ``True`` once it is known."""
        self.count(chunk)
        try:
            return self.header.feed(chunk)
        except InvalidBody as exc:
            raise AnswerNow(error(400, str(exc))) from None

    def end(self) -> bytes:
        """The body ended while looking for the header line: the line, or a 400."""
        if self.length is not None and self.total < self.length:
            raise BodyFailed(400, "the body is shorter than its Content-Length")
        try:
            return self.header.finish()
        except InvalidBody as exc:
            raise AnswerNow(error(400, str(exc))) from None

    def rest(self, next_chunk: Callable[[int], bytes]) -> Iterator[bytes]:
        """What was read, then the rest of the body as it comes: the body sent upstream."""
        yield self.header.prefix
        while not self.complete:
            chunk = next_chunk(self.wanted())
            if not chunk:
                if self.length is not None:
                    raise BodyFailed(400, "the body is shorter than its Content-Length")
                return
            self.count(chunk)
            yield chunk

    def drain_budget(self) -> int:
        """How much more to read and throw away after an early answer (0: none)."""
        if self.length is None:
            return DRAIN_LIMIT
        left = self.length - self.total
        return left if left <= DRAIN_LIMIT else 0


def lower_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{lower-case name: value}``; a repeated header's values joined with ``", "``."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def environ_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in environ.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            pairs.append((key.replace("_", "-"), value))
        elif key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            pairs.append((key[5:].replace("_", "-"), value))
    return pairs


def reader(stream: object) -> Callable[[int], bytes]:
    """``next_chunk(size)`` over a readable body; read failures become :class:`BodyFailed`."""
    read = getattr(stream, "read", None)

    def next_chunk(size: int) -> bytes:
        if read is None:
            return b""
        try:
            data = read(size)
        except Exception as exc:
            raise BodyFailed(400, f"could not read the request body: {type(exc).__name__}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise BodyFailed(500, "the request body is not bytes")
        return bytes(data)

    return next_chunk


def read_header(reading: Reading, next_chunk: Callable[[int], bytes]) -> bytes:
    """Read the body up to the end of the envelope header line; the line."""
    while not reading.complete:
        chunk = next_chunk(reading.wanted())
        if not chunk:
            break
        if reading.add(chunk):
            return reading.line
    return reading.end()


def drain(reading: Reading, next_chunk: Callable[[int], bytes]) -> None:
    """Read (and drop) a bounded rest of the body, so that a client still sending sees the answer."""
    budget = reading.drain_budget()
    while budget > 0 and not reading.complete:
        try:
            chunk = next_chunk(min(CHUNK, budget, reading.wanted() or CHUNK))
        except BodyFailed:
            return
        if not chunk:
            return
        budget -= len(chunk)
        reading.total += len(chunk)
