"""A strict ``multipart/form-data`` parser (RFC 7578) over a body already read within its limit.

Bounded everywhere: the number of parts, the size of a part's headers and of every field, the
number and size of files. Anything it cannot read exactly is refused with the reason, never
guessed at: a missing or malformed boundary, a part without ``Content-Disposition: form-data``,
a body without its closing delimiter, text that is not UTF-8.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from ._responses import Refusal

__all__ = ["Upload", "parse_boundary", "parse_multipart", "parse_parameters"]

#: RFC 2046: 1 to 70 characters from this set, not ending with a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]\Z")
_MAX_PART_HEADERS = 8 * 1024
_MAX_HEADER_LINES = 16
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class Upload:
    """A file part: the form field's name, the file name as sent, the declared media type, the bytes."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Limits:
    """What one form may hold."""

    max_fields: int
    max_field_size: int
    max_files: int
    max_file_size: int


def parse_parameters(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename="b"'`` as ``("form-data", {"name": "a", "filename": "b"})``.

    Names are lower-cased. A backslash in a quoted value is itself, as browsers write form
    data (a Windows path as a file name; ``"`` comes as ``%22``); an RFC 5987
    ``name*=utf-8''...`` value is decoded and wins over the plain one. ``ValueError``
    for a value it cannot read.
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    position = 0
    while position < len(rest):
        while position < len(rest) and rest[position] in " \t;":
            position += 1
        if position >= len(rest):
            break
        match = _TOKEN.match(rest, position)
        if match is None:
            raise ValueError(f"a parameter name was expected at {rest[position : position + 20]!r}")
        name = match.group(0).lower()
        position = match.end()
        while position < len(rest) and rest[position] in " \t":
            position += 1
        if position >= len(rest) or rest[position] != "=":
            raise ValueError(f"parameter {name!r} has no value")
        position += 1
        while position < len(rest) and rest[position] in " \t":
            position += 1
        if position < len(rest) and rest[position] == '"':
            chars: list[str] = []
            position += 1
            while True:
                if position >= len(rest):
                    raise ValueError(f"the quoted value of {name!r} is not closed")
                char = rest[position]
                position += 1
                if char == '"':
                    break
                chars.append(char)
            text = "".join(chars)
        else:
            end = rest.find(";", position)
            end = len(rest) if end < 0 else end
            text = rest[position:end].strip()
            position = end
        if name.endswith("*"):
            extended[name[:-1]] = _decode_extended(text)
        elif name in params:
            raise ValueError(f"parameter {name!r} is given twice")
        else:
            params[name] = text
    params.update(extended)
    return main.strip().lower(), params


def _decode_extended(value: str) -> str:
    charset, quote, encoded = value.split("'", 2) if value.count("'") >= 2 else ("", "", "")
    if not quote and not encoded:
        raise ValueError(f"{value!r} is not an RFC 5987 value")
    if charset.lower() not in ("utf-8", "us-ascii"):
        raise ValueError(f"charset {charset!r} is not supported")
    return urllib.parse.unquote(encoded, encoding="utf-8", errors="strict")


def parse_boundary(content_type: str) -> str:
    """The ``boundary`` of a ``multipart/form-data`` content type; a :class:`Refusal` when it has none."""
    try:
        _, params = parse_parameters(content_type)
    except ValueError as exc:
        raise Refusal(400, "invalid_form", f"the Content-Type header cannot be read: {exc}") from None
    boundary = params.get("boundary")
    if not boundary:
        raise Refusal(400, "invalid_form", "multipart/form-data without a boundary")
    if not _BOUNDARY.match(boundary):
        raise Refusal(400, "invalid_form", "the multipart boundary is not valid (RFC 2046)")
    return boundary


def parse_multipart(body: bytes, boundary: str, limits: Limits) -> tuple[list[tuple[str, str]], list[Upload]]:
    """The text fields (in order) and the files of a ``multipart/form-data`` body.

    A file input left empty (no file name, no bytes) is no file. Raises :class:`Refusal`.
    """
    delimiter = b"--" + boundary.encode("ascii")
    position = _first_delimiter(body, delimiter)
    fields: list[tuple[str, str]] = []
    files: list[Upload] = []
    parts = 0
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return fields, files  # the close delimiter; what follows is the epilogue
        position = _end_of_line(body, position)
        parts += 1
        if parts > limits.max_fields + limits.max_files:
            raise Refusal(
                400, "too_many_fields", f"the form has more than {limits.max_fields + limits.max_files} parts"
            )
        header_end = body.find(b"\r\n\r\n", position, position + _MAX_PART_HEADERS + 4)
        if header_end < 0:
            if body.find(b"\r\n\r\n", position) < 0:
                raise Refusal(400, "invalid_form", "the form ends inside a part's headers")
            raise Refusal(400, "invalid_form", f"a part's headers are longer than {_MAX_PART_HEADERS} bytes")
        name, filename, content_type = _part_headers(body[position:header_end])
        # Some clients end an empty part's headers with the delimiter's own CRLF: search from there.
        end = body.find(b"\r\n" + delimiter, header_end + 2)
        if end < 0:
            raise Refusal(400, "invalid_form", "the form is not terminated: a part has no closing boundary")
        start = min(header_end + 4, end)
        size = end - start
        if filename is None:
            if len(fields) >= limits.max_fields:
                raise Refusal(400, "too_many_fields", f"the form has more than {limits.max_fields} fields")
            if size > limits.max_field_size:
                raise Refusal(413, "field_too_large", f"field {name!r} is larger than {limits.max_field_size} bytes")
            fields.append((name, _utf8(body[start:end], f"field {name!r}")))
        elif filename or size:
            if len(files) >= limits.max_files:
                raise Refusal(400, "too_many_attachments", f"at most {limits.max_files} files may be attached")
            if size > limits.max_file_size:
                raise Refusal(
                    413,
                    "attachment_too_large",
                    f"file {filename!r} is larger than {limits.max_file_size} bytes",
                )
            files.append(Upload(name, filename, content_type, body[start:end]))
        position = end + 2


def _first_delimiter(body: bytes, delimiter: bytes) -> int:
    """Where the first delimiter line starts (after an optional preamble)."""
    if body.startswith(delimiter):
        return 0
    found = body.find(b"\r\n" + delimiter)
    if found < 0:
        raise Refusal(400, "invalid_form", "the body does not contain the multipart boundary")
    return found + 2


def _end_of_line(body: bytes, position: int) -> int:
    """Skip the transport padding after a delimiter and its CRLF; the position after it."""
    while position < len(body) and body[position] in b" \t":
        position += 1
    if not body.startswith(b"\r\n", position):
        raise Refusal(400, "invalid_form", "a multipart boundary is not followed by a line break")
    return position + 2


def _part_headers(raw: bytes) -> tuple[str, str | None, str]:
    """``(field name, file name or None, media type)`` from a part's header block."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # old browsers send file names in the page's legacy encoding
    lines = text.split("\r\n")
    if len(lines) > _MAX_HEADER_LINES:
        raise Refusal(400, "invalid_form", f"a part has more than {_MAX_HEADER_LINES} header lines")
    disposition: str | None = None
    content_type = ""
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise Refusal(400, "invalid_form", f"a part has a malformed header line: {line[:60]!r}")
        key = name.lower()
        if key == "content-disposition":
            if disposition is not None:
                raise Refusal(400, "invalid_form", "a part has two Content-Disposition headers")
            disposition = value.strip()
        elif key == "content-type":
            content_type = value.strip()
        elif key == "content-transfer-encoding" and value.strip().lower() not in ("binary", "8bit", "7bit"):
            raise Refusal(400, "invalid_form", f"Content-Transfer-Encoding {value.strip()[:20]!r} is not supported")
    if disposition is None:
        raise Refusal(400, "invalid_form", "a part has no Content-Disposition header")
    try:
        kind, params = parse_parameters(disposition)
    except ValueError as exc:
        raise Refusal(400, "invalid_form", f"a part's Content-Disposition cannot be read: {exc}") from None
    if kind != "form-data" or "name" not in params:
        raise Refusal(400, "invalid_form", "a part is not 'form-data' with a name")
    return params["name"], params.get("filename"), content_type


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "invalid_encoding", f"{what} is not UTF-8 text") from None
