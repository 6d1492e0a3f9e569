"""Attachments from file objects and from web frameworks' uploads, end to end to the local receiver.

The uploads are the frameworks' real classes (Werkzeug's ``FileStorage``, Django's
``SimpleUploadedFile`` and ``InMemoryUploadedFile``, Starlette's ``UploadFile``), some of
them made by the frameworks' own multipart parsers from a real request body.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

import sentry_feedback as sf
from sentry_feedback import Attachment
from sentry_feedback.server import LocalReceiver

werkzeug_datastructures = pytest.importorskip("werkzeug.datastructures")
werkzeug_test = pytest.importorskip("werkzeug.test")
werkzeug_wrappers = pytest.importorskip("werkzeug.wrappers")
django_uploadedfile = pytest.importorskip("django.core.files.uploadedfile")
starlette_datastructures = pytest.importorskip("starlette.datastructures")
starlette_requests = pytest.importorskip("starlette.requests")

FileStorage = werkzeug_datastructures.FileStorage
SimpleUploadedFile = django_uploadedfile.SimpleUploadedFile
InMemoryUploadedFile = django_uploadedfile.InMemoryUploadedFile
UploadFile = starlette_datastructures.UploadFile

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as receiver:
        sf.init(dsn=receiver.dsn)
        yield receiver


def stored(receiver: LocalReceiver, event_id: str) -> dict[str, tuple[bytes, str]]:
    return {a.filename: (a.data, a.content_type) for a in receiver.store.list_attachments(event_id)}


def described(attachment: Attachment) -> tuple[str, str, bytes]:
    return attachment.filename, attachment.content_type, attachment.read()


def starlette_upload(data: bytes, filename: str | None, content_type: str | None = None) -> Any:
    headers = starlette_datastructures.Headers({"content-type": content_type} if content_type else {})
    spooled = tempfile.SpooledTemporaryFile()  # noqa: SIM115 - the UploadFile owns it, as in a request
    spooled.write(data)
    spooled.seek(0)
    return UploadFile(spooled, filename=filename, headers=headers)


def multipart(filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """A browser-like form POST body with one file field ``shot`` and a ``message``."""
    return urllib3.encode_multipart_formdata({"message": "It broke", "shot": (filename, data, content_type)})


class CountingBytesIO(io.BytesIO):
    """A BytesIO that remembers how many bytes were read from it, and can refuse to seek."""

    def __init__(self, data: bytes, *, seekable: bool = True) -> None:
        super().__init__(data)
        self.bytes_read = 0
        self._seekable = seekable

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def seekable(self) -> bool:
        return self._seekable


# -- Attachment(file object) ---------------------------------------------------------------------


def test_a_bytesio_is_read_at_once_and_left_where_it_was() -> None:
    stream = io.BytesIO(b"header|body")
    stream.seek(7)
    attachment = Attachment(stream, filename="part.bin")
    stream.write(b"XXXX")  # later changes are not sent: the content was taken when attached
    assert attachment.read() == b"body"
    assert stream.tell() == 11
    assert attachment.size() == 4 and attachment.content_type == "application/octet-stream"


def test_an_open_binary_file_is_named_after_it(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"12:00 GET / 500\n")
    with path.open("rb") as fh:
        attachment = Attachment(fh)
        assert fh.tell() == 0
    assert described(attachment) == ("app.log", "text/plain", b"12:00 GET / 500\n")


@pytest.mark.parametrize("max_size", [1024 * 1024, 16], ids=["in-memory", "rolled-over-to-disk"])
def test_a_spooled_temporary_file(max_size: int) -> None:
    with tempfile.SpooledTemporaryFile(max_size=max_size) as spooled:
        spooled.write(PNG)
        spooled.seek(0)
        attachment = Attachment(spooled, filename="shot.png")
    assert attachment.read() == PNG and attachment.content_type == "image/png"


def test_a_file_object_without_a_name_needs_a_filename() -> None:
    with pytest.raises(TypeError, match=r"without a name needs filename=.*Attachment.from_upload"):
        Attachment(io.BytesIO(b"x"))


def test_text_mode_file_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with path.open("r") as opened, tempfile.SpooledTemporaryFile(mode="w+") as spooled:
        spooled.write("hello")
        spooled.seek(0)
        for text_file in (opened, io.StringIO("hello"), spooled):
            with pytest.raises(TypeError, match=r"binary file object.*'rb'"):
                Attachment(text_file, filename="notes.txt")  # type: ignore[arg-type]
            assert text_file.tell() == 0 and text_file.read() == "hello"  # still all there


def test_what_is_not_a_file_object_is_refused_as_before(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="or a binary file object, not int"):
        Attachment(5, filename="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not PosixPath \(for a file on disk use path=\)"):
        Attachment(tmp_path / "x", filename="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exactly one of"):
        Attachment(io.BytesIO(b"x"), path=tmp_path / "x", filename="x")
    with pytest.raises(TypeError, match="filename= must be a str"):
        Attachment(io.BytesIO(b"x"), filename=5)  # type: ignore[arg-type]


def test_an_async_upload_is_pointed_to_from_upload() -> None:
    with pytest.raises(TypeError, match=r"cannot await UploadFile.read\(\): use Attachment.from_upload"):
        Attachment(starlette_upload(b"x", "x.txt"), filename="x.txt")


def test_a_seekable_file_over_the_limit_is_not_read_at_all() -> None:
    sf.init(transport=lambda envelope: None, max_attachment_size=100)
    stream = CountingBytesIO(b"z" * 5000)
    attachment = Attachment(stream, filename="big.bin")
    assert stream.bytes_read == 0 and stream.tell() == 0
    assert attachment.size() == 5000 and attachment.counted_size() == 5000
    with pytest.raises(sf.AttachmentReadError, match=r"larger than max_attachment_size \(5000 > 100 bytes\)") as caught:
        attachment.read()
    assert (caught.value.reason, caught.value.quantity) == ("invalid", 5000)


def test_a_stream_that_cannot_seek_is_read_up_to_the_limit_plus_one_byte() -> None:
    sf.init(transport=lambda envelope: None, max_attachment_size=100)
    stream = CountingBytesIO(b"z" * 5000, seekable=False)
    attachment = Attachment(stream, filename="big.bin")
    assert stream.bytes_read == 101
    with pytest.raises(sf.AttachmentReadError, match=r"more than 100 bytes") as caught:
        attachment.read()
    assert (caught.value.reason, caught.value.quantity) == ("invalid", 101)
    small = CountingBytesIO(b"z" * 100, seekable=False)
    assert Attachment(small, filename="ok.bin").read() == b"z" * 100


def test_a_file_object_that_fails_never_raises_into_the_caller() -> None:
    closed = io.BytesIO(b"gone")
    closed.close()

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            raise OSError("device unplugged")

    for stream, why in ((closed, "I/O operation on closed file"), (Broken(), "device unplugged")):
        attachment = Attachment(stream, filename="x.bin")
        with pytest.raises(sf.AttachmentReadError, match=why) as caught:
            attachment.read()
        assert caught.value.reason == "internal_sdk_error"
        assert attachment.counted_size() == 1


# -- Attachment.from_upload --------------------------------------------------------------------


def test_from_upload_takes_werkzeug_filestorage() -> None:
    stream = io.BytesIO(PNG)
    upload = FileStorage(stream, filename="C:\\Users\\jane\\Desktop\\shot.png", name="shot", content_type="image/png")
    stream.seek(5)  # the application read part of it already
    attachment = Attachment.from_upload(upload)
    assert described(attachment) == ("shot.png", "image/png", PNG)
    assert stream.tell() == 5


def test_from_upload_without_a_name_or_type() -> None:
    attachment = Attachment.from_upload(FileStorage(io.BytesIO(b"data"), name="shot"))
    assert (attachment.filename, attachment.content_type) == ("upload", "application/octet-stream")
    attachment = Attachment.from_upload(starlette_upload(b"{}", "../../etc/state.json"))
    assert (attachment.filename, attachment.content_type) == ("state.json", "application/json")


def test_from_upload_takes_django_uploads() -> None:
    simple = SimpleUploadedFile("report.pdf", b"%PDF-1.7", content_type="application/pdf")
    in_memory = InMemoryUploadedFile(io.BytesIO(b"a,b\n1,2\n"), "file", "cart.csv", "text/csv", 8, "utf-8")
    assert described(Attachment.from_upload(simple)) == ("report.pdf", "application/pdf", b"%PDF-1.7")
    assert described(Attachment.from_upload(in_memory)) == ("cart.csv", "text/csv", b"a,b\n1,2\n")


def test_from_upload_takes_starlette_uploadfile() -> None:
    upload = starlette_upload(PNG, "shot.png", "image/png")
    attachment = Attachment.from_upload(upload)
    assert described(attachment) == ("shot.png", "image/png", PNG)
    assert upload.file.tell() == 0


def test_from_upload_takes_plain_file_objects_too(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_bytes(b"[]")
    with path.open("rb") as fh:
        assert described(Attachment.from_upload(fh)) == ("trace.json", "application/json", b"[]")
    assert Attachment.from_upload(io.BytesIO(b"x")).filename == "upload"
    with pytest.raises(TypeError, match="not dict"):
        Attachment.from_upload({"filename": "x.png"})


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\fakepath\\shot.png", "shot.png"),
        ("shot\x00.png", "shot.png"),
        ("line\nbreak.txt", "line break.txt"),
        ("\u202egnp.exe", "gnp.exe"),  # a right-to-left override that would show "exe.png"
        ("élan 写真.png", "élan 写真.png"),
        ("..", "upload"),
        ("/", "upload"),
        ("", "upload"),
        ("a" * 300 + ".png", "a" * 251 + ".png"),
    ],
)
def test_from_upload_keeps_a_safe_base_name(sent: str, kept: str) -> None:
    assert Attachment.from_upload(FileStorage(io.BytesIO(b"x"), filename=sent)).filename == kept


def test_from_upload_overrides_and_odd_content_types() -> None:
    upload = FileStorage(io.BytesIO(b"x"), filename="shot.png", content_type="image/png; name=shot")
    assert Attachment.from_upload(upload).content_type == "image/png; name=shot"
    chosen = Attachment.from_upload(upload, filename="mine.txt", content_type="text/x-mine")
    assert (chosen.filename, chosen.content_type) == ("mine.txt", "text/x-mine")
    for declared in ("nonsense", "image/png\r\nX-Injected: 1", "text/html\x1b[31m", "x/" + "y" * 300):
        odd = starlette_upload(b"x", "shot.png", declared)
        assert Attachment.from_upload(odd).content_type == "image/png"  # guessed from the name instead


# -- end to end --------------------------------------------------------------------------------


def test_every_kind_of_file_object_arrives_intact(receiver: LocalReceiver, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"12:00:01 GET /checkout 500\n")
    with tempfile.SpooledTemporaryFile(max_size=16) as rolled, log.open("rb") as fh:
        rolled.write(b"\x00\x01" * 100)
        rolled.seek(0)
        attachments = [
            Attachment(io.BytesIO(b"theme=dark"), filename="settings.ini"),
            Attachment(fh),
            Attachment(rolled, filename="dump.bin"),
            Attachment.from_upload(FileStorage(io.BytesIO(PNG), filename="shot.png", content_type="image/png")),
            Attachment.from_upload(SimpleUploadedFile("report.pdf", b"%PDF-1.7", content_type="application/pdf")),
            Attachment.from_upload(InMemoryUploadedFile(io.BytesIO(b"a,b\n"), "f", "cart.csv", "text/csv", 4, None)),
            Attachment.from_upload(starlette_upload(b'{"cart": []}', "state.json", "application/json")),
        ]
    event_id = sf.send_feedback("The pay button does nothing", attachments=attachments, timeout=10)
    assert stored(receiver, event_id) == {
        "settings.ini": (b"theme=dark", "application/octet-stream"),
        "app.log": (b"12:00:01 GET /checkout 500\n", "text/plain"),
        "dump.bin": (b"\x00\x01" * 100, "application/octet-stream"),
        "shot.png": (PNG, "image/png"),
        "report.pdf": (b"%PDF-1.7", "application/pdf"),
        "cart.csv": (b"a,b\n", "text/csv"),
        "state.json": (b'{"cart": []}', "application/json"),
    }


def test_a_werkzeug_upload_is_sent_after_its_request_is_closed(receiver: LocalReceiver) -> None:
    body, content_type = multipart("../shot.png", PNG, "image/png")
    environ = werkzeug_test.create_environ(
        method="POST", input_stream=io.BytesIO(body), content_type=content_type, content_length=len(body)
    )
    request = werkzeug_wrappers.Request(environ)
    upload = request.files["shot"]
    event_id = sf.capture_feedback(request.form["message"], attachments=[Attachment.from_upload(upload)])
    request.close()  # the end of the request: Werkzeug closes the uploaded files
    assert upload.stream.closed and event_id is not None
    assert sf.flush(5)
    assert stored(receiver, event_id) == {"shot.png": (PNG, "image/png")}


def test_a_starlette_upload_is_sent_after_its_form_is_closed(receiver: LocalReceiver) -> None:
    body, content_type = multipart("shot.png", PNG, "image/png")

    async def handle() -> tuple[str | None, Any]:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-type", content_type.encode())]}
        request = starlette_requests.Request(scope, receive)
        async with request.form() as form:
            upload = form["shot"]
            message = form["message"]
            assert isinstance(message, str)
            event_id = sf.capture_feedback(message, attachments=[Attachment.from_upload(upload)])
        return event_id, upload  # the form is closed: so are its files

    event_id, upload = asyncio.run(handle())
    assert upload.file.closed and event_id is not None
    assert sf.flush(5)
    assert stored(receiver, event_id) == {"shot.png": (PNG, "image/png")}


def test_a_too_large_upload_is_left_out_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    with LocalReceiver() as receiver:
        sf.init(dsn=receiver.dsn, max_attachment_size=1000)
        big = CountingBytesIO(b"z" * 5000)
        attachments = [
            Attachment.from_upload(FileStorage(big, filename="big.bin")),
            Attachment.from_upload(FileStorage(io.BytesIO(b"small"), filename="small.txt")),
        ]
        assert big.bytes_read == 0
        with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
            event_id = sf.send_feedback("with a big upload", attachments=attachments, timeout=10)
        assert "attachment 'big.bin' not sent: larger than max_attachment_size (5000 > 1000 bytes)" in caplog.text
        assert sf.flush(5)
        assert stored(receiver, event_id) == {"small.txt": (b"small", "text/plain")}
        assert receiver.store.client_report_totals() == {("invalid", "attachment"): 5000}


def test_an_unreadable_upload_is_left_out_and_counted() -> None:
    closed = io.BytesIO(b"gone")
    closed.close()
    with LocalReceiver() as receiver:
        sf.init(dsn=receiver.dsn)
        attachment = Attachment.from_upload(FileStorage(closed, filename="gone.bin"))
        event_id = sf.send_feedback("with a closed upload", attachments=[attachment], timeout=10)
        assert sf.flush(5)
        assert stored(receiver, event_id) == {}
        assert receiver.store.client_report_totals() == {("internal_sdk_error", "attachment"): 1}


# -- an upload given where an Attachment belongs -------------------------------------------------


def test_send_feedback_refuses_an_unwrapped_upload_naming_it(receiver: LocalReceiver) -> None:
    stream = io.BytesIO(PNG)
    upload = FileStorage(stream, filename="shot.png", content_type="image/png")
    with pytest.raises(sf.InvalidFeedbackError, match=r"attachments\[0\] is FileStorage, not an Attachment"):
        sf.send_feedback("x", attachments=[upload], timeout=10)
    assert stream.tell() == 0 and not stream.closed  # the application can still use its upload
    assert sf.flush(5)
    assert receiver.store.list_feedback() == []
    assert receiver.store.client_report_totals() == {("invalid", "feedback"): 1, ("invalid", "attachment"): 1}


def test_capture_feedback_sends_without_an_unwrapped_upload_and_counts_it(
    receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    upload = starlette_upload(PNG, "shot.png", "image/png")
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        event_id = sf.capture_feedback("x", attachments=[upload, Attachment.from_upload(upload)])
    assert "attachments[0] is UploadFile, not an Attachment" in caplog.text
    assert event_id is not None and sf.flush(5)
    assert stored(receiver, event_id) == {"shot.png": (PNG, "image/png")}
    assert receiver.store.client_report_totals() == {("invalid", "attachment"): 1}


def test_an_upload_given_alone_is_one_entry_not_its_lines(receiver: LocalReceiver) -> None:
    """A file object is iterable (by lines): ``attachments=upload`` must not become one entry per line."""
    stream = io.BytesIO(b"line one\nline two\nline three\n")
    upload = FileStorage(stream, filename="app.log", content_type="text/plain")
    with pytest.raises(sf.InvalidFeedbackError, match=r"attachments is FileStorage, not an Attachment .*from_upload"):
        sf.send_feedback("x", attachments=upload, timeout=10)  # type: ignore[arg-type]
    assert stream.tell() == 0  # not read
    assert sf.flush(5)
    assert receiver.store.client_report_totals() == {("invalid", "feedback"): 1, ("invalid", "attachment"): 1}
