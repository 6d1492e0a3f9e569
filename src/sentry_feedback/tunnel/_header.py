"""Finding an envelope's header line in a body that arrives in pieces (and may be compressed).

The tunnel must know the envelope's DSN before it contacts anyone, so it reads the body
until the first newline, holding what it read (the *prefix*) to send on unchanged, then
streams the rest. A compressed body is inflated only as far as the header line, in bounded
steps, so a small body cannot expand into a large allocation.
"""

from __future__ import annotations

import zlib

__all__: list[str] = []

#: ``Content-Encoding`` values the tunnel can read the header through: name -> zlib ``wbits``.
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_RAW_DEFLATE = -zlib.MAX_WBITS


class InvalidBody(Exception):
    """The body is not an envelope the tunnel can read; the message says why (a 400)."""


class HeaderReader:
    """Fed the raw body chunk by chunk; :attr:`line` is the header line once it is known.

    ``encoding`` is ``""`` (identity) or a key of :data:`ENCODINGS`. At most ``limit``
    decoded bytes are looked at: a longer first line raises :class:`InvalidBody`.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self._limit = limit
        self._wbits = ENCODINGS.get(encoding)
        self._decompressor: zlib._Decompress | None = None
        self._raw = bytearray()
        self._decoded = bytearray()  # the decoded head of a compressed body
        self._searched = 0
        #: The header line (without the newline) once found.
        self.line: bytes | None = None

    @property
    def prefix(self) -> bytes:
        """Every raw byte fed so far: the start of the body to send on."""
        return bytes(self._raw)

    def feed(self, chunk: bytes) -> bool:
        """Take the next piece of the body; ``True`` once the header line is known."""
        if self.line is not None:
            raise RuntimeError("the header line is known already")
        self._raw += chunk
        if self._wbits is None:
            return self._search(self._raw)
        self._inflate(chunk)
        return self._search(self._decoded)

    def finish(self) -> bytes:
        """The body ended: the header line (a body without a newline is all header)."""
        if self.line is not None:
            return self.line
        if not self._raw:
            raise InvalidBody("the body is empty: an envelope starts with a header line")
        if self._wbits is not None:
            decompressor = self._decompressor
            if decompressor is None or not decompressor.eof:
                raise InvalidBody("the compressed body is truncated")
            head = self._decoded
        else:
            head = self._raw
        if not head.strip():
            raise InvalidBody("the envelope header is empty")
        self.line = bytes(head)
        return self.line

    def _search(self, head: bytearray) -> bool:
        end = head.find(b"\n", self._searched)
        if end == -1:
            if len(head) > self._limit:
                raise InvalidBody(f"the envelope header is longer than {self._limit} bytes")
            self._searched = len(head)
            return False
        if end > self._limit:
            raise InvalidBody(f"the envelope header is longer than {self._limit} bytes")
        self.line = bytes(head[:end])
        return True

    def _inflate(self, chunk: bytes) -> None:
        if self._decompressor is None:
            if len(self._raw) < 2:  # the zlib header decides between zlib and raw deflate
                return
            chunk = bytes(self._raw)
            self._decompressor = zlib.decompressobj(self._wbits_for(chunk))
        try:
            pending = chunk
            while pending and len(self._decoded) <= self._limit:
                decompressor = self._decompressor
                if decompressor.eof:
                    if self._wbits != ENCODINGS["gzip"]:
                        raise InvalidBody("unexpected data after the compressed body")
                    # Several gzip members make one body.
                    self._decompressor = decompressor = zlib.decompressobj(self._wbits)
                room = self._limit + 1 - len(self._decoded)
                self._decoded += decompressor.decompress(pending, room)
                pending = decompressor.unconsumed_tail or (decompressor.unused_data if decompressor.eof else b"")
                if not pending and not decompressor.eof:
                    break
        except zlib.error as exc:
            raise InvalidBody(f"the compressed body is invalid: {exc}") from None

    def _wbits_for(self, start: bytes) -> int:
        wbits = self._wbits
        assert wbits is not None
        if wbits == zlib.MAX_WBITS:  # "deflate": zlib-wrapped, or raw as some clients send it
            cmf, flg = start[0], start[1]
            if cmf & 0x0F != 8 or (cmf * 256 + flg) % 31:
                return _RAW_DEFLATE
        return wbits
