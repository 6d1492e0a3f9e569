"""From request bytes to a checked feedback: reading the body, parsing it, validating every field."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from .._attachment import _sanitized_name, guess_content_type
from .._feedback import normalize_event_id
from ..exceptions import InvalidFeedbackError
from ._multipart import Limits, Upload, parse_boundary, parse_multipart, parse_parameters
from ._options import EndpointOptions
from ._responses import Refusal

__all__ = ["BodyPlan", "Submission", "body_plan", "parse_submission", "read_body"]

#: The fields a client may post. Everything else (``event_id``, ``source``, ``tags``, ``user``...) is ignored.
FIELDS = ("message", "email", "name", "url", "associated_event_id", "sentry_trace", "baggage")
MAX_EMAIL = 254
MAX_NAME = 256
MAX_URL = 4096
MAX_TRACE_FIELD = 8192
#: The largest text field of a multipart form (the message is at most 4096 characters: 16 KiB of UTF-8).
MAX_FIELD_SIZE = 64 * 1024
_READ_CHUNK = 64 * 1024
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+\Z")
#: The first bytes of the image types a screenshot comes as.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class BodyPlan:
    """How a request's body is to be read: its kind, the multipart boundary, the byte limit, the declared length."""

    kind: str
    boundary: str
    limit: int
    length: int | None


@dataclass(frozen=True)
class CheckedUpload:
    """An attachment that passed the checks: a clean file name and an allowed media type."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Submission:
    """A feedback as the client posted it, every field checked (``None``: not given)."""

    message: str
    email: str | None = None
    name: str | None = None
    url: str | None = None
    associated_event_id: str | None = None
    sentry_trace: str | None = None
    baggage: str | None = None
    attachments: tuple[CheckedUpload, ...] = ()


def body_plan(content_type: str | None, content_length: str | None, options: EndpointOptions) -> BodyPlan:
    """What to read, from the ``Content-Type`` and ``Content-Length`` headers; a :class:`Refusal` (400/413/415)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    boundary = ""
    if media == "multipart/form-data":
        boundary = parse_boundary(content_type or "")
        kind, limit = "multipart", options.max_body_size
    elif media == "application/json":
        kind, limit = "json", min(options.max_form_size, options.max_body_size)
    elif media == "application/x-www-form-urlencoded":
        kind, limit = "form", min(options.max_form_size, options.max_body_size)
    else:
        shown = media[:60] or "none"
        raise Refusal(
            415,
            "unsupported_media_type",
            f"Content-Type {shown!r} is not accepted: post multipart/form-data, "
            "application/x-www-form-urlencoded or application/json",
        )
    if charset_of(content_type or "") not in ("", "utf-8", "utf8", "us-ascii"):
        raise Refusal(415, "unsupported_media_type", "only UTF-8 bodies are accepted")
    length: int | None = None
    if content_length is not None:
        text = content_length.strip()
        if not text.isdigit() or not text.isascii() or len(text) > 18:
            raise Refusal(400, "invalid_length", "Content-Length is not a number of bytes")
        length = int(text)
        if length > limit:
            raise Refusal(413, "body_too_large", f"the body is larger than {limit} bytes")
    return BodyPlan(kind, boundary, limit, length)


def charset_of(content_type: str) -> str:
    """The ``charset`` parameter of a content type, lower case; ``""`` when none (or unreadable)."""
    try:
        return parse_parameters(content_type)[1].get("charset", "").strip().lower()
    except ValueError:
        return ""


def read_body(read: Callable[[int], bytes], plan: BodyPlan, *, terminated: bool) -> bytes:
    """The request body through ``read(size)``, never more than ``plan.limit`` bytes.

    With a ``Content-Length`` exactly that many bytes are read (fewer: 400, the client stopped);
    without one the body is read to its end when the server frames it (``terminated``, as
    for a chunked body), else it is refused with 411.
    """
    if plan.length is None and not terminated:
        raise Refusal(411, "length_required", "the request has no Content-Length")
    want = plan.limit + 1 if plan.length is None else plan.length
    chunks: list[bytes] = []
    total = 0
    while total < want:
        try:
            chunk = read(min(_READ_CHUNK, want - total))
        except Exception:
            raise Refusal(400, "incomplete_body", "the body could not be read to its end") from None
        if not isinstance(chunk, (bytes, bytearray)):
            raise Refusal(400, "incomplete_body", "the body could not be read")
        if not chunk:
            break
        chunks.append(bytes(chunk))
        total += len(chunk)
    if total > plan.limit:
        raise Refusal(413, "body_too_large", f"the body is larger than {plan.limit} bytes")
    if plan.length is not None and total < plan.length:
        raise Refusal(400, "incomplete_body", f"the body ended after {total} of {plan.length} bytes")
    return b"".join(chunks)


def parse_submission(body: bytes, plan: BodyPlan, options: EndpointOptions, max_file_size: int) -> Submission:
    """Parse and check a body read as ``plan`` says; a :class:`Refusal` saying what is wrong."""
    uploads: list[Upload] = []
    if plan.kind == "multipart":
        limits = Limits(options.max_fields, MAX_FIELD_SIZE, options.max_attachments, max_file_size)
        pairs, uploads = parse_multipart(body, plan.boundary, limits)
        values = _known(pairs)
    elif plan.kind == "form":
        values = _known(_urlencoded(body, options.max_fields))
    else:
        values = _json_object(body)
    attachments = tuple(_checked_upload(upload, options) for upload in uploads)
    return Submission(
        message=_message(values.get("message"), options.max_message_length),
        email=_email(values.get("email")),
        name=_text(values.get("name"), "name", MAX_NAME),
        url=_url(values.get("url")),
        associated_event_id=_event_id(values.get("associated_event_id")),
        sentry_trace=_text(values.get("sentry_trace"), "sentry_trace", MAX_TRACE_FIELD),
        baggage=_text(values.get("baggage"), "baggage", MAX_TRACE_FIELD),
        attachments=attachments,
    )


def url_from_referer(referer: str | None) -> str | None:
    """The page the form was posted from (``Referer``), when it is an http(s) URL we would accept as ``url``."""
    try:
        return _url(referer) if referer else None
    except Refusal:
        return None


# -- parsing ---------------------------------------------------------------------------------------------------


def _known(pairs: list[tuple[str, str]]) -> dict[str, object]:
    """The fields the endpoint reads, each at most once; the others are dropped here."""
    values: dict[str, object] = {}
    for name, value in pairs:
        if name not in FIELDS:
            continue
        if name in values:
            raise Refusal(400, "duplicate_field", f"field {name!r} is given more than once", field=name)
        values[name] = value
    return values


def _urlencoded(body: bytes, max_fields: int) -> list[tuple[str, str]]:
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise Refusal(400, "invalid_encoding", "a URL-encoded body must be ASCII (percent-encoded UTF-8)") from None
    try:
        return urllib.parse.parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=max_fields
        )
    except UnicodeDecodeError:
        raise Refusal(400, "invalid_encoding", "a field is not percent-encoded UTF-8") from None
    except ValueError:
        raise Refusal(400, "too_many_fields", f"the form has more than {max_fields} fields") from None


def _json_object(body: bytes) -> dict[str, object]:
    try:
        value: object = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refusal(400, "invalid_encoding", "the JSON body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        detail = str(exc)[:120] if isinstance(exc, json.JSONDecodeError) else "too deeply nested or too large"
        raise Refusal(400, "invalid_json", f"the body is not valid JSON: {detail}") from None
    if not isinstance(value, dict):
        raise Refusal(400, "invalid_json", f"the body must be a JSON object, not {_json_type(value)}")
    return {name: value[name] for name in FIELDS if name in value}


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# -- fields ------------------------------------------------------------------------------------------------------


def _string(value: object, field: str) -> str | None:
    """``value`` if it is a non-empty string; ``None`` for nothing, null or ``""``; 400 for another type."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refusal(400, "invalid_field", f"{field} must be a string, not {_json_type(value)}", field=field)
    return value or None


def _message(value: object, limit: int) -> str:
    if value is None:
        raise Refusal(400, "missing_message", "message is required", field="message")
    if not isinstance(value, str):
        raise Refusal(400, "invalid_field", f"message must be a string, not {_json_type(value)}", field="message")
    message = value.replace("\r\n", "\n")  # browsers post a textarea's line breaks as CRLF
    if not message.strip():
        raise Refusal(400, "missing_message", "message is empty", field="message")
    if len(message) > limit:
        raise Refusal(
            400,
            "message_too_long",
            f"message is {len(message)} characters long; the limit is {limit}",
            field="message",
            extra={"limit": limit},
        )
    if "\x00" in message:
        raise Refusal(400, "invalid_field", "message contains a NUL character", field="message")
    return message


def _email(value: object) -> str | None:
    email = _string(value, "email")
    if email is None:
        return None
    email = email.strip()
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise Refusal(400, "invalid_email", "email is not an email address", field="email")
    return email


def _text(value: object, field: str, limit: int) -> str | None:
    text = _string(value, field)
    if text is None:
        return None
    text = text.strip()
    if len(text) > limit:
        raise Refusal(400, "invalid_field", f"{field} is longer than {limit} characters", field=field)
    if _CONTROL.search(text) or "\n" in text or "\r" in text:
        raise Refusal(400, "invalid_field", f"{field} contains control characters", field=field)
    return text or None


def _url(value: object) -> str | None:
    url = _text(value, "url", MAX_URL)
    if url is None:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and " " not in url
    except ValueError:
        valid = False
    if not valid:
        raise Refusal(400, "invalid_url", "url must be an http or https URL", field="url")
    return url


def _event_id(value: object) -> str | None:
    text = _string(value, "associated_event_id")
    if text is None or not text.strip():
        return None
    try:
        return normalize_event_id(text, "associated_event_id")
    except InvalidFeedbackError:
        raise Refusal(
            400,
            "invalid_event_id",
            "associated_event_id must be an event id: 32 hex digits",
            field="associated_event_id",
        ) from None


def _checked_upload(upload: Upload, options: EndpointOptions) -> CheckedUpload:
    """The upload with a clean file name and a media type the endpoint allows; 415 otherwise."""
    filename = _sanitized_name(upload.filename) or "upload"
    declared = upload.content_type.split(";", 1)[0].strip().lower()
    media = declared if _MEDIA_TYPE.match(declared) and options.allows_content_type(declared) else ""
    if not media:
        guessed = guess_content_type(filename)  # browsers send odd types for logs: text/x-log, octet-stream
        media = guessed if options.allows_content_type(guessed) else ""
    if not media:
        shown = declared or "none"
        raise Refusal(
            415,
            "attachment_type_not_allowed",
            f"file {filename!r} ({shown}) is not an accepted type",
            field=upload.field,
            extra={"allowed": list(options.allowed_content_types)},
        )
    if media.startswith("image/") and media in ("image/png", "image/jpeg", "image/gif", "image/webp"):
        found = _image_type(upload.data)
        if found is None or not options.allows_content_type(found):
            raise Refusal(
                415,
                "attachment_type_not_allowed",
                f"file {filename!r} is not a PNG, JPEG, GIF or WebP image",
                field=upload.field,
            )
        media = found  # what the bytes are, whatever the name said
    return CheckedUpload(filename, media, upload.data)


def _image_type(data: bytes) -> str | None:
    for signature, media in _SIGNATURES:
        if data.startswith(signature):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
