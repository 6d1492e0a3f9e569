"""Files that travel with a feedback or an event."""

from __future__ import annotations

import builtins
import os

__all__ = ["Attachment"]

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Types mimetypes does not know everywhere but feedback attachments often are.
_EXTRA_TYPES = {
    ".log": "text/plain",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".json": "application/json",
    ".har": "application/json",
    ".webp": "image/webp",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".ndjson": "application/x-ndjson",
}


def guess_content_type(filename: str) -> str:
    """The content type for ``filename``, ``application/octet-stream`` when unknown."""
    import mimetypes  # loads the system's type tables: only when an attachment is made

    ext = os.path.splitext(filename)[1].lower()
    return _EXTRA_TYPES.get(ext) or mimetypes.guess_type(filename)[0] or _DEFAULT_CONTENT_TYPE


class Attachment:
    """A file sent with a feedback or event, from memory or from a path.

    A path is read when the envelope is written on the background thread, never at
    capture time, so attaching a large log costs the caller nothing. The content type
    is guessed from the filename when not given.

    >>> Attachment(b"log lines", filename="app.log").content_type
    'text/plain'
    """

    __slots__ = ("_bytes", "attachment_type", "content_type", "filename", "path")

    def __init__(
        self,
        bytes: bytes | bytearray | memoryview | str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        attachment_type: str = "event.attachment",
    ) -> None:
        if (bytes is None) == (path is None):
            raise TypeError("Attachment needs exactly one of bytes or path=")
        if isinstance(bytes, str):
            bytes = bytes.encode("utf-8")
        self._bytes = None if bytes is None else builtins.bytes(bytes)
        self.path = None if path is None else os.fspath(path)
        if filename is None:
            if self.path is None:
                raise TypeError("Attachment from bytes needs filename=")
            filename = os.path.basename(self.path)
        self.filename = filename
        self.content_type = content_type or guess_content_type(filename)
        self.attachment_type = attachment_type

    def read(self) -> bytes:
        """The attachment's bytes, reading the file now if it came from a path."""
        if self._bytes is not None:
            return self._bytes
        assert self.path is not None
        with open(self.path, "rb") as fh:
            return fh.read()

    def size(self) -> int:
        """Size in bytes without reading the file; 0 when a path cannot be inspected."""
        if self._bytes is not None:
            return len(self._bytes)
        assert self.path is not None
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def __repr__(self) -> str:
        source = f"path={self.path!r}" if self.path is not None else f"{len(self._bytes or b'')} bytes"
        return f"Attachment({source}, filename={self.filename!r}, content_type={self.content_type!r})"
