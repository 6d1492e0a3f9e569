"""Files that travel with a feedback or an event."""

from __future__ import annotations

import builtins
import io
import os
import stat

from ._client_reports import DiscardReason
from .exceptions import AttachmentReadError

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


#: Flags for opening an attachment file: never block (a FIFO without a writer would), never
#: become the controlling terminal, never leak into a child process.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_CHUNK = 1024 * 1024


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
        elif bytes is not None and not isinstance(bytes, (builtins.bytes, bytearray, memoryview)):
            raise TypeError(f"Attachment takes bytes, bytearray, memoryview or str, not {type(bytes).__name__}")
        self._bytes = None if bytes is None else builtins.bytes(bytes)
        self.path = None if path is None else os.fspath(path)
        if not isinstance(self.path, (str, type(None))):
            raise TypeError(f"Attachment path= must be a str or os.PathLike[str], not {type(self.path).__name__}")
        if filename is None:
            if self.path is None:
                raise TypeError("Attachment from bytes needs filename=")
            filename = os.path.basename(self.path)
        for name, value in (
            ("filename", filename),
            ("content_type", content_type),
            ("attachment_type", attachment_type),
        ):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Attachment {name}= must be a str, not {type(value).__name__}")
        self.filename = filename
        self.content_type = content_type or guess_content_type(filename)
        self.attachment_type = attachment_type

    def read(self, limit: int | None = None) -> bytes:
        """The attachment's bytes, reading the file now if it came from a path.

        Only regular files are read: the file is opened without blocking and checked on
        the opened descriptor, so a FIFO, a device or a directory is refused at once.
        With ``limit``, no more than ``limit + 1`` bytes are ever read, whatever the file
        claims its size is (``/proc`` files, files that grow while read). Raises
        :class:`~sentry_feedback.exceptions.AttachmentReadError` (an ``OSError``) saying why it could not be read.
        """
        if self._bytes is not None:
            if limit is not None and len(self._bytes) > limit:
                raise _too_large(len(self._bytes), limit)
            return self._bytes
        assert self.path is not None
        try:
            fd = os.open(self.path, _OPEN_FLAGS)
        except OSError as exc:
            raise AttachmentReadError(
                f"cannot open {self.path!r}: {exc.strerror or exc}", reason=DiscardReason.INTERNAL_SDK_ERROR, quantity=1
            ) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise AttachmentReadError(
                    f"{self.path!r} is not a regular file ({_file_kind(info.st_mode)})",
                    reason=DiscardReason.INVALID,
                    quantity=1,
                )
            if limit is not None and info.st_size > limit:
                raise _too_large(info.st_size, limit)
            expected = info.st_size if limit is None else min(info.st_size, limit)
            with open(fd, "rb") as fh:
                fd = -1  # the file object owns the descriptor from here
                return _read_capped(fh, expected, limit)
        except AttachmentReadError:
            raise
        except OSError as exc:
            raise AttachmentReadError(
                f"cannot read {self.path!r}: {exc.strerror or exc}", reason=DiscardReason.INTERNAL_SDK_ERROR, quantity=1
            ) from exc
        finally:
            if fd >= 0:
                os.close(fd)

    def size(self) -> int:
        """Size in bytes without reading the file; 0 when a path is not a regular file or cannot be inspected."""
        known = self._known_size()
        return 0 if known is None else known

    def counted_size(self) -> int:
        """What a drop of this attachment counts in client reports: its bytes, 1 when unknown."""
        known = self._known_size()
        return 1 if known is None else known

    def _known_size(self) -> int | None:
        if self._bytes is not None:
            return len(self._bytes)
        assert self.path is not None
        try:
            info = os.stat(self.path)
        except (OSError, ValueError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def __repr__(self) -> str:
        source = f"path={self.path!r}" if self.path is not None else f"{len(self._bytes or b'')} bytes"
        return f"Attachment({source}, filename={self.filename!r}, content_type={self.content_type!r})"


def _too_large(size: int, limit: int) -> AttachmentReadError:
    return AttachmentReadError(
        f"larger than max_attachment_size ({size} > {limit} bytes)", reason=DiscardReason.INVALID, quantity=size
    )


def _read_capped(fh: io.BufferedReader, expected: int, limit: int | None) -> bytes:
    """Read to the end of ``fh``; ``expected`` bytes are likely, never more than ``limit`` are accepted.

    The first read asks for exactly the expected size plus one byte (a buffered read
    returns less only at the end of the file), so a file that does not change is read
    with one allocation of its size.
    """
    first = fh.read(expected + 1) or b""
    if len(first) <= expected:
        return first
    chunks = [first]
    total = len(first)
    while True:
        if limit is not None and total > limit:
            raise _too_large(total, limit)
        want = _CHUNK if limit is None else min(_CHUNK, limit + 1 - total)
        chunk = fh.read(want)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"
