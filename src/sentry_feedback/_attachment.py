"""Files that travel with a feedback or an event."""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import stat

from ._client_reports import DiscardReason
from .exceptions import AttachmentReadError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

__all__ = ["Attachment"]


if TYPE_CHECKING:

    class BinaryReadable(Protocol):
        """Anything with ``read(size) -> bytes``: an open binary file, ``io.BytesIO``, an upload's stream."""

        def read(self, size: int = ..., /) -> bytes:
            """At most ``size`` bytes; ``b""`` at the end."""
            ...


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
    """A file sent with a feedback or event: from memory, from a binary file object or from a path.

    A path is read when the envelope is written on the background thread, never at
    capture time, so attaching a large log costs the caller nothing. A file object (an
    upload's stream, ``io.BytesIO``, an open ``"rb"`` file) is read at once, on the
    calling thread, while it is still valid. The content type is guessed from the
    filename when not given.

    >>> Attachment(b"log lines", filename="app.log").content_type
    'text/plain'
    >>> Attachment(io.BytesIO(b"{}"), filename="state.json").read()
    b'{}'
    """

    __slots__ = (
        "_bytes",
        "_error",
        "_size",
        "attachment_type",
        "content_type",
        "filename",
        "path",
    )

    def __init__(
        self,
        bytes: bytes | bytearray | memoryview | str | BinaryReadable | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        attachment_type: str = "event.attachment",
    ) -> None:
        if (bytes is None) == (path is None):
            raise TypeError("Attachment needs exactly one of bytes (or a binary file object) or path=")
        for name, value in (
            ("filename", filename),
            ("content_type", content_type),
            ("attachment_type", attachment_type),
        ):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Attachment {name}= must be a str, not {type(value).__name__}")
        #: Why a file object's content was not kept (too large, unreadable); read() raises it.
        self._error: AttachmentReadError | None = None
        #: What that content counts for in client reports: its size when known, else 1.
        self._size: int | None = None
        self._bytes: builtins.bytes | None = None
        self.path: str | None = None
        if path is not None:
            fspath = os.fspath(path)
            if not isinstance(fspath, str):
                raise TypeError(f"Attachment path= must be a str or os.PathLike[str], not {type(fspath).__name__}")
            self.path = fspath
            if filename is None:
                filename = os.path.basename(fspath)
        elif isinstance(bytes, (builtins.bytes, bytearray, memoryview, str)):
            if filename is None:
                raise TypeError("Attachment from bytes needs filename=")
            self._bytes = bytes.encode("utf-8") if isinstance(bytes, str) else builtins.bytes(bytes)
        else:
            stream = _binary_stream(bytes, "Attachment")
            if filename is None:
                filename = _sanitized_name(_name_of(bytes))
                if filename is None:
                    raise TypeError(
                        f"Attachment from a {type(bytes).__name__} without a name needs filename= "
                        "(for a web framework's upload use Attachment.from_upload(upload))"
                    )
            self._take(stream, rewind=False)
        self.filename = filename
        self.content_type = content_type or guess_content_type(filename)
        self.attachment_type = attachment_type

    @classmethod
    def from_upload(
        cls,
        upload: object,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        attachment_type: str = "event.attachment",
    ) -> Attachment:
        """An attachment from a file uploaded to a web framework, keeping its file name and content type.

        Takes Werkzeug's (Flask's) ``FileStorage``, Django's ``UploadedFile`` and Starlette's
        (FastAPI's) ``UploadFile``, and any binary file object. The whole upload is read now,
        on the calling thread, from its start (its position is put back afterwards), while
        the request still holds it. The file name is the one the browser sent, reduced to
        its base name (``C:\\Users\\jane\\shot.png`` gives ``shot.png``; ``"upload"``
        when there is none), and the content type the one it declared, else a guess from
        the file name. ``filename`` and ``content_type`` override both.

        Like ``Attachment(file)``, an upload larger than ``max_attachment_size`` is not
        read whole: the feedback is sent without it and it is counted as ``invalid``.
        """
        stream = _upload_stream(upload)
        if filename is None:
            filename = _sanitized_name(_name_of(upload)) or "upload"
        if content_type is None:
            content_type = _declared_content_type(upload)
        attachment = cls(
            b"",
            filename=filename,
            content_type=content_type,
            attachment_type=attachment_type,
        )
        attachment._take(stream, rewind=True)
        return attachment

    def _take(self, stream: BinaryReadable, *, rewind: bool) -> None:
        """Keep what ``stream`` holds, within the active client's ``max_attachment_size``; else remember why not."""
        from ._context import get_client  # late: the client's modules import this one

        try:
            self._bytes = _read_stream(stream, get_client().options.max_attachment_size, rewind=rewind)
        except AttachmentReadError as exc:
            self._bytes = None
            self._error = exc
            self._size = exc.quantity

    def read(self, limit: int | None = None) -> bytes:
        """The attachment's bytes, reading the file now if it came from a path.

        For a file object (read when the attachment was made) that was too large or could not
        be read, this raises the error met then.

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
        if self._error is not None:
            error = self._error
            raise AttachmentReadError(str(error), reason=error.reason, quantity=error.quantity) from error.__cause__
        assert self.path is not None
        return _read_opened(self.path, *_open_regular(self.path), limit)

    def _contents(self, limit: int | None = None) -> bytes | FileRegion:
        """What to send: the bytes, or for a large file a :class:`FileRegion` read only while it is sent.

        A file up to :data:`SMALL_FILE` bytes (or one whose size the system does not know, such
        as a ``/proc`` file) is read now, like :meth:`read`. A larger one is opened and
        checked now, not read: its size now is what is sent (what the file gains later is
        not; a file that shrinks before it is read fails then). Raises
        :class:`~sentry_feedback.exceptions.AttachmentReadError` like :meth:`read`.
        """
        if self.path is None:
            return self.read(limit)
        fd, info = _open_regular(self.path)
        if info.st_size <= SMALL_FILE:
            return _read_opened(self.path, fd, info, limit)
        os.close(fd)
        if limit is not None and info.st_size > limit:
            raise _too_large(info.st_size, limit)
        return FileRegion(self.path, 0, info.st_size)

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
        if self.path is None:
            return self._size
        try:
            info = os.stat(self.path)
        except (OSError, ValueError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def __repr__(self) -> str:
        if self.path is not None:
            source = f"path={self.path!r}"
        elif self._error is not None:
            source = f"not kept: {self._error}"
        else:
            source = f"{len(self._bytes or b'')} bytes"
        return f"Attachment({source}, filename={self.filename!r}, content_type={self.content_type!r})"


def _too_large(size: int, limit: int, *, exact: bool = True) -> AttachmentReadError:
    comparison = f"{size} > {limit} bytes" if exact else f"more than {limit} bytes"
    return AttachmentReadError(
        f"larger than max_attachment_size ({comparison})",
        reason=DiscardReason.INVALID,
        quantity=size,
    )


def _binary_stream(obj: object, what: str) -> BinaryReadable:
    """``obj`` if it is a file object that reads bytes synchronously; ``TypeError`` saying why not."""
    read = getattr(obj, "read", None)
    kind = type(obj).__name__
    if not callable(read):
        hint = " (for a file on disk use path=)" if isinstance(obj, os.PathLike) else ""
        raise TypeError(f"{what} takes bytes, bytearray, memoryview, str or a binary file object, not {kind}{hint}")
    if isinstance(obj, io.TextIOBase):
        raise TypeError(f"{what} needs a binary file object, not the text file {kind}: open it in 'rb' mode")
    from inspect import (
        iscoroutinefunction,  # only for file objects: keeps ``import sentry_feedback`` light
    )

    if iscoroutinefunction(read):
        raise TypeError(f"{what} cannot await {kind}.read(): use Attachment.from_upload(upload), or pass upload.file")
    stream: BinaryReadable = obj  # type: ignore[assignment]  # checked above
    return stream


def _upload_stream(upload: object) -> BinaryReadable:
    """Where an upload's bytes are: Werkzeug's ``.stream``, Starlette's (and Django's) ``.file``, or itself."""
    from inspect import iscoroutinefunction

    for attribute in ("stream", "file"):
        try:
            inner = getattr(upload, attribute, None)
        except Exception:
            continue
        read = getattr(inner, "read", None)
        if callable(read) and not iscoroutinefunction(read):
            return _binary_stream(inner, "Attachment.from_upload")
    return _binary_stream(upload, "Attachment.from_upload")


def _name_of(obj: object) -> object:
    """The file name an upload or file object carries: ``filename`` (Werkzeug, Starlette), else ``name``.

    Werkzeug's ``name`` is the form field's, so ``name`` is only used when there is no
    ``filename`` attribute at all (Django's uploads, open files).
    """
    try:
        if hasattr(obj, "filename"):
            return getattr(obj, "filename", None)
        return getattr(obj, "name", None)
    except Exception:
        return None


#: Longest file name kept from an upload or a file object (most file systems allow 255).
_MAX_NAME = 255


def _sanitized_name(value: object) -> str | None:
    """``value`` as a file name without directories or control characters; ``None`` when nothing is left.

    Browsers may send a whole Windows path, and a client may send anything: only the part
    after the last ``/`` or ``\\`` is kept, whitespace becomes a space and other
    unprintable characters (controls, bidi overrides) are removed.
    """
    if isinstance(value, builtins.bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str):
        return None
    base = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if ch.isspace() else ch for ch in base if ch.isprintable() or ch.isspace()).strip()
    if name in ("", ".", ".."):
        return None
    if len(name) > _MAX_NAME:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: _MAX_NAME - len(ext)] + ext
    return name


def _declared_content_type(upload: object) -> str | None:
    """The content type an upload declares (``content_type``, else Werkzeug's ``mimetype``), if it is sane."""
    for attribute in ("content_type", "mimetype"):
        try:
            value = getattr(upload, attribute, None)
        except Exception:
            continue
        if isinstance(value, str):
            value = value.strip()
            if "/" in value and len(value) <= 255 and all(" " <= ch <= "~" for ch in value):
                return value
    return None


def _read_stream(stream: BinaryReadable, limit: int, *, rewind: bool) -> builtins.bytes:
    """What ``stream`` holds from its position (its start with ``rewind``) to its end; never more than ``limit``.

    A seekable stream is measured first and not read at all when it is too large; any
    stream is read ``limit + 1`` bytes at most. The position is put back afterwards when
    the stream can seek. ``AttachmentReadError`` when too large or unreadable (``read()``
    or ``seek()`` raised); ``TypeError`` when ``read()`` does not return bytes.
    """
    start = _position(stream)
    if start is None:
        return _read_to_end(stream, None, limit)
    seekable: _Seekable = stream  # type: ignore[assignment]
    try:
        try:
            seekable.seek(0, os.SEEK_END)
            end = seekable.tell()
            origin = 0 if rewind else start
            seekable.seek(origin)
        except Exception as exc:
            raise _unreadable(stream, exc, 1) from exc
        expected = max(end - origin, 0)
        if expected > limit:
            raise _too_large(expected, limit)
        return _read_to_end(stream, expected, limit)
    finally:
        with contextlib.suppress(Exception):
            seekable.seek(start)


def _read_to_end(stream: BinaryReadable, expected: int | None, limit: int) -> builtins.bytes:
    chunks: list[builtins.bytes] = []
    total = 0
    want = _CHUNK if expected is None else expected + 1
    while True:
        want = min(want, limit + 1 - total)
        try:
            chunk: object = stream.read(want)
        except Exception as exc:
            raise _unreadable(stream, exc, max(expected or 0, total, 1)) from exc
        if isinstance(chunk, str):
            raise TypeError(
                f"Attachment needs a binary file object: {type(stream).__name__}.read() returned str "
                "(open the file in 'rb' mode)"
            )
        if chunk is None:  # a non-blocking stream with nothing to read now
            raise AttachmentReadError(
                f"{type(stream).__name__}.read() returned None: no data ready",
                reason=DiscardReason.INTERNAL_SDK_ERROR,
                quantity=max(expected or 0, total, 1),
            )
        if not isinstance(chunk, (builtins.bytes, bytearray, memoryview)):
            raise TypeError(f"{type(stream).__name__}.read() returned {type(chunk).__name__}, not bytes")
        if not chunk:
            return b"".join(chunks)
        chunks.append(builtins.bytes(chunk))
        total += len(chunks[-1])
        if total > limit:
            raise _too_large(max(total, expected or 0), limit, exact=False)
        want = _CHUNK


if TYPE_CHECKING:

    class _Seekable(Protocol):
        def seek(self, offset: int, whence: int = ..., /) -> object: ...

        def tell(self) -> int: ...


def _position(stream: object) -> int | None:
    """The stream's position, or ``None`` when it cannot seek (then it is read as it comes)."""
    try:
        seekable = getattr(stream, "seekable", None)
        if callable(seekable) and not seekable():
            return None
        seek, tell = getattr(stream, "seek", None), getattr(stream, "tell", None)
        if not callable(seek) or not callable(tell):
            return None
        position = tell()
    except Exception:
        return None
    return position if isinstance(position, int) and not isinstance(position, bool) and position >= 0 else None


def _unreadable(stream: object, exc: BaseException, quantity: int) -> AttachmentReadError:
    return AttachmentReadError(
        f"cannot read the {type(stream).__name__}: {exc}",
        reason=DiscardReason.INTERNAL_SDK_ERROR,
        quantity=quantity,
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


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """A descriptor of ``path`` opened without blocking, and its status; only a regular file is accepted."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise AttachmentReadError(
            f"cannot open {path!r}: {exc.strerror or exc}",
            reason=DiscardReason.INTERNAL_SDK_ERROR,
            quantity=1,
        ) from exc
    try:
        info = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _unreadable_file(path, exc) from exc
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise AttachmentReadError(
            f"{path!r} is not a regular file ({_file_kind(info.st_mode)})",
            reason=DiscardReason.INVALID,
            quantity=1,
        )
    return fd, info


def _unreadable_file(path: str, exc: OSError, quantity: int = 1) -> AttachmentReadError:
    return AttachmentReadError(
        f"cannot read {path!r}: {exc.strerror or exc}", reason=DiscardReason.INTERNAL_SDK_ERROR, quantity=quantity
    )


def _read_opened(path: str, fd: int, info: os.stat_result, limit: int | None) -> bytes:
    """The content of the regular file open as ``fd`` (closed here), at most ``limit`` bytes accepted."""
    try:
        if limit is not None and info.st_size > limit:
            raise _too_large(info.st_size, limit)
        expected = info.st_size if limit is None else min(info.st_size, limit)
        with open(fd, "rb") as fh:
            fd = -1  # the file object owns the descriptor from here
            return _read_capped(fh, expected, limit)
    except AttachmentReadError:
        raise
    except OSError as exc:
        raise _unreadable_file(path, exc) from exc
    finally:
        if fd >= 0:
            os.close(fd)


#: Bytes read from a file (or sliced from memory) at a time while an envelope is written out.
BLOCK = 64 * 1024
#: Files up to this size are read whole when their envelope is prepared; larger ones while it is written.
SMALL_FILE = 256 * 1024


class FileRegion:
    """``length`` bytes of the file at ``path`` from ``offset``: a payload read block by block when written.

    An attachment given as a path becomes one when its envelope is prepared, and so does a
    large item of an envelope read back from the offline cache; either way the payload is
    never held in memory whole.
    """

    __slots__ = ("length", "offset", "path")

    def __init__(self, path: str, offset: int, length: int) -> None:
        self.path = path
        self.offset = offset
        self.length = length

    def blocks(self, size: int = BLOCK) -> Iterator[bytes]:
        """The bytes in blocks of at most ``size``; :class:`AttachmentReadError` if the file is gone or shorter."""
        fd, _ = _open_regular(self.path)
        try:
            if self.offset:
                os.lseek(fd, self.offset, os.SEEK_SET)
            left = self.length
            while left > 0:
                try:
                    block = os.read(fd, min(size, left))
                except OSError as exc:
                    raise _unreadable_file(self.path, exc, self.length) from exc
                if not block:
                    raise AttachmentReadError(
                        f"{self.path!r} became shorter while it was sent ({self.length - left} of {self.length} bytes)",
                        reason=DiscardReason.INTERNAL_SDK_ERROR,
                        quantity=self.length,
                    )
                left -= len(block)
                yield block
        finally:
            os.close(fd)

    def read(self) -> bytes:
        """All the bytes at once (for callers that want the whole payload in memory)."""
        return b"".join(self.blocks())

    def __repr__(self) -> str:
        return f"FileRegion({self.path!r}, offset={self.offset}, length={self.length})"
