"""The multipart parser on its own: what browsers and HTTP clients send, and its limits."""

from __future__ import annotations

import pytest

from sentry_feedback.endpoint._multipart import Limits, Upload, parse_multipart, parse_parameters
from sentry_feedback.endpoint._responses import Refusal

LIMITS = Limits(max_fields=8, max_field_size=1000, max_files=2, max_file_size=1000)
B = "XyZ"


def parse(body: bytes, limits: Limits = LIMITS) -> tuple[list[tuple[str, str]], list[Upload]]:
    return parse_multipart(body, B, limits)


def test_preamble_padding_epilogue_and_empty_values() -> None:
    body = (
        b"This is the preamble.\r\n"
        b"--XyZ  \t\r\n"
        b'Content-Disposition: form-data; name="message"\r\n\r\n'
        b"line one\r\nline two\r\n"
        b"--XyZ\r\n"
        b'content-disposition: form-data; name="email"\r\n\r\n'  # an empty value, as written by most clients
        b"\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="url"\r\n\r\n'  # and as Werkzeug's test client writes it
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n'
        b"a --XyZ is no delimiter here\r\n"
        b"--XyZ--\r\n"
        b"This is the epilogue. --XyZ\r\n"
    )
    fields, files = parse(body)
    assert fields == [("message", "line one\r\nline two"), ("email", ""), ("url", "")]
    assert files == [Upload("f", "a.txt", "text/plain", b"a --XyZ is no delimiter here")]


def test_file_names() -> None:
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="a"; filename="C:\\Users\\jane\\my %22shot%22.png"\r\n\r\n'
        b"1\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="b"; filename="fallback.txt"; filename*=UTF-8\'\'%C3%A9t%C3%A9.txt\r\n'
        b"\r\n2\r\n"
        b"--XyZ--"
    )
    _, files = parse(body)
    assert [(f.field, f.filename) for f in files] == [("a", "C:\\Users\\jane\\my %22shot%22.png"), ("b", "été.txt")]


def test_utf8_names_and_values() -> None:
    body = '--XyZ\r\nContent-Disposition: form-data; name="message"\r\n\r\nÇa ne marche pas 💥\r\n--XyZ--'.encode()
    assert parse(body)[0] == [("message", "Ça ne marche pas 💥")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('form-data; name="a"', ("form-data", {"name": "a"})),
        ("Form-Data;NAME=a;filename=b.png", ("form-data", {"name": "a", "filename": "b.png"})),
        ('form-data; name="a;b"; filename=""', ("form-data", {"name": "a;b", "filename": ""})),
        ("multipart/form-data; boundary=----x", ("multipart/form-data", {"boundary": "----x"})),
        ("text/plain", ("text/plain", {})),
    ],
)
def test_parameters(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_parameters(value) == expected


@pytest.mark.parametrize(
    "value",
    ['form-data; name="a', "form-data; name", "form-data; =a", 'form-data; name="a"; name="b"', "x; f*=latin-1''%E9"],
)
def test_unreadable_parameters(value: str) -> None:
    with pytest.raises(ValueError):
        parse_parameters(value)


def test_limits() -> None:
    one = b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nabc\r\n'
    with pytest.raises(Refusal) as files:
        parse(one * 3 + b"--XyZ--")
    assert files.value.code == "too_many_attachments"
    field = b'--XyZ\r\nContent-Disposition: form-data; name="x"\r\n\r\nabc\r\n'
    with pytest.raises(Refusal) as fields:
        parse(field * 9 + b"--XyZ--")
    assert fields.value.code == "too_many_fields"
    with pytest.raises(Refusal) as parts:
        parse(field * 11 + b"--XyZ--")  # the part count stops the parse before the rest is looked at
    assert parts.value.code == "too_many_fields"
    with pytest.raises(Refusal) as big:
        parse(b'--XyZ\r\nContent-Disposition: form-data; name="x"\r\n\r\n' + b"x" * 1001 + b"\r\n--XyZ--")
    assert (big.value.status, big.value.code) == (413, "field_too_large")
