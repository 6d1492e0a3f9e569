"""The envelope endpoint: Sentry's ingest protocol, checked the way Relay checks it.

``POST /api/<project_id>/envelope/`` with ``X-Sentry-Auth`` (or ``sentry_key`` in the
query string), gzip or deflate bodies inflated in bounded steps against the server's
memory budget, envelopes of at most :data:`MAX_ENVELOPE_ITEMS` items; every malformed
input is a 400 whose ``detail`` says why.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._envelope import Envelope
from ..exceptions import EnvelopeParseError
from ._app import Arrival
from ._config import Project
from ._http import Answer, Headers, Reject
from ._rows import event_message, normalize_id, time_span, valid_trace_id

if TYPE_CHECKING:
    from ._app import FeedbackApp, Request

__all__ = ["ReceivedRequest", "envelope_project", "handle", "rejected"]

logger = logging.getLogger("sentry_feedback.server")

#: The most items one envelope may hold: the work a single request causes is bounded (Relay
#: bounds it too). More is a 400.
MAX_ENVELOPE_ITEMS = 1000
#: Compressed bodies are inflated in steps of this many bytes, each taken from the budget.
_INFLATE_STEP = 1024 * 1024
_ENVELOPE_PATH = re.compile(r"^/api/(?P<project_id>[^/]+)/envelope/?$")
#: Browser SDKs post envelopes from any page, without credentials (the key is in the query string).
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Sentry-Rate-Limits, Retry-After",
}
_CORS_ALLOWED_HEADERS = "Content-Type, Content-Encoding, X-Sentry-Auth, sentry-trace, baggage"
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS


@dataclass(frozen=True)
class ReceivedRequest:
    """One envelope request as the receiver saw it.

    ``headers`` is a read-only mapping looked up case-insensitively (``headers["x-sentry-auth"]``).
    ``body`` is the body after gzip/deflate decoding (the raw bytes when decoding failed).
    ``status`` is the status answered; ``envelope`` is the parsed envelope, or None when
    the body did not parse (or was never looked at: 401, 404, 413).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    status: int
    envelope: Envelope | None

    @property
    def project_id(self) -> str | None:
        """The project id in the request path, or None when the path is not an envelope URL."""
        match = _ENVELOPE_PATH.match(urllib.parse.urlsplit(self.path).path)
        return match.group("project_id") if match else None


def envelope_project(path: str) -> str | None:
    """The project id of an envelope endpoint path, or None when ``path`` is not one."""
    match = _ENVELOPE_PATH.match(path)
    return match.group("project_id") if match else None


def handle(app: FeedbackApp, request: Request, project_id: str) -> Answer:
    """The envelope endpoint: ``POST`` stores an envelope, ``OPTIONS`` answers CORS preflight."""
    if request.method == "POST":
        try:
            raw = request.body()
        except Reject as reject:
            _record(app, request.method, request.target, request.headers, b"", reject.answer.status, None)
            return _cors(reject.answer)
        body, envelope, answer = _envelope_request(app, request, project_id, raw)
        _record(app, request.method, request.target, request.headers, body, answer.status, envelope)
        return _cors(answer)
    request.body()
    if request.method == "OPTIONS":
        requested = request.headers.get("Access-Control-Request-Headers") or ""
        allowed = ", ".join(name.strip() for name in requested.split(",") if _HEADER_NAME.fullmatch(name.strip()))
        preflight = {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": allowed or _CORS_ALLOWED_HEADERS,
            "Access-Control-Max-Age": "86400",
        }
        return _cors(Answer(204, b"", preflight))
    return _cors(Answer.error(405, f"method {request.method} not allowed", {"Allow": "POST, OPTIONS"}))


def rejected(app: FeedbackApp, method: str, target: str, headers: Headers, answer: Answer) -> Answer:
    """A request refused before its body was read: recorded (envelope POSTs) and given CORS headers."""
    if envelope_project(urllib.parse.urlsplit(target).path) is None:
        return answer
    if method == "POST":
        _record(app, method, target, headers, b"", answer.status, None)
    return _cors(answer)


def _cors(answer: Answer) -> Answer:
    """Every answer of the envelope endpoint carries the CORS headers a browser SDK needs."""
    return Answer(answer.status, answer.body, {**_CORS_HEADERS, **answer.headers})


def _record(
    app: FeedbackApp,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    status: int,
    envelope: Envelope | None,
) -> None:
    if app.hooks is not None:
        headers = headers if isinstance(headers, Headers) else Headers(headers.items())
        app.hooks._record(ReceivedRequest(method, target, headers, body, status, envelope))


def _envelope_request(
    app: FeedbackApp, request: Request, project_id: str, raw: bytes
) -> tuple[bytes, Envelope | None, Answer]:
    body = raw
    try:
        project = _check_auth(app, request, project_id)
        body = _decode(app, request, raw)
        canned = app.hooks._take_canned() if app.hooks is not None else None
        if canned is not None and not 200 <= canned.status < 300:
            return body, _try_parse(body), canned
        try:
            envelope = Envelope.parse(body, max_items=MAX_ENVELOPE_ITEMS)
        except EnvelopeParseError as exc:
            raise Reject(Answer.error(400, str(exc))) from None
        try:
            _check_envelope(envelope)
            app.store.store_envelope(project.id, envelope, len(body))
        except EnvelopeParseError as exc:
            return body, envelope, Answer.error(400, str(exc))
        except UnicodeEncodeError as exc:  # a lone surrogate escape decoded from JSON cannot be stored
            return body, envelope, Answer.error(400, f"invalid text in the envelope: {exc.reason}")
        except Exception as exc:  # a storage failure must answer, not kill the connection
            logger.debug("storing an envelope failed", exc_info=True)
            return body, envelope, Answer.error(500, f"could not store the envelope: {exc}")
        if app.on_arrival is not None:
            app.arrived(_arrivals(project.slug, envelope))
        if canned is not None:
            if canned.body or canned.status == 204:
                return body, envelope, canned
            default = Answer.json(canned.status, {"id": envelope.event_id})
            return body, envelope, Answer(canned.status, default.body, {**default.headers, **canned.headers})
        return body, envelope, Answer.json(200, {"id": envelope.event_id})
    except Reject as reject:
        return body, None, reject.answer


def _check_auth(app: FeedbackApp, request: Request, project_id: str) -> Project:
    """The project the request's DSN key and path name; 401 for a missing or wrong key, 404 for no project."""
    key: str | None = None
    for header in ("X-Sentry-Auth", "Authorization"):
        value = request.headers.get(header)
        if value and value.strip()[:7].lower() == "sentry ":
            key = _parse_auth(value).get("sentry_key")
            if key is None:
                raise Reject(Answer.error(401, f"{header} header has no sentry_key"))
            break
    if key is None:
        keys = urllib.parse.parse_qs(request.query_string).get("sentry_key")
        key = keys[0] if keys else None
    if key is None:
        raise Reject(Answer.error(401, "missing authorization: no X-Sentry-Auth header or sentry_key"))
    projects = app.config.projects
    if not any(secrets.compare_digest(key.encode(), p.public_key.encode()) for p in projects):
        raise Reject(Answer.error(401, f"invalid sentry_key {key!r}"))
    project = next((p for p in projects if p.id == project_id), None)
    if project is None:
        raise Reject(Answer.error(404, f"unknown project {project_id!r}"))
    if not secrets.compare_digest(key.encode(), project.public_key.encode()):
        raise Reject(Answer.error(401, f"sentry_key {key!r} is not a key of project {project_id!r}"))
    return project


def _decode(app: FeedbackApp, request: Request, raw: bytes) -> bytes:
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    limit = app.max_body_size
    try:
        if encoding in ("identity", ""):
            return raw
        if encoding in ("gzip", "x-gzip"):
            return _inflate(raw, _GZIP_WBITS, limit, request.reserve)
        if encoding == "deflate":
            try:
                return _inflate(raw, _ZLIB_WBITS, limit, request.reserve)
            except zlib.error:
                return _inflate(raw, _RAW_DEFLATE_WBITS, limit, request.reserve)
    except zlib.error as exc:
        raise Reject(Answer.error(400, f"invalid {encoding} body: {exc}")) from None
    except _TooLarge:
        raise Reject(Answer.error(413, f"decoded body is larger than {limit} bytes")) from None
    raise Reject(Answer.error(400, f"unsupported Content-Encoding {encoding!r}"))


def _arrivals(project: str, envelope: Envelope) -> list[Arrival]:
    """An :class:`Arrival` for each feedback, event, transaction, session update and session aggregate item.

    Called once the envelope is stored, so the items are valid; a summary that fails anyway is left out
    (``message`` None) rather than failing the answer.
    """
    now = time.time()
    arrivals = []
    for item in envelope.items:
        if item.type not in ("event", "feedback", "user_report") and item.type not in _SUMMARIES:
            continue
        try:
            payload = item.get_json()
        except Exception:
            payload = None
        data: dict[str, Any] = payload if isinstance(payload, dict) else {}
        message: Any
        event_id = envelope.event_id or (data.get("event_id") if isinstance(data.get("event_id"), str) else None)
        if item.type in _SUMMARIES:
            kind = item.type
            try:
                message = _SUMMARIES[item.type](data)
            except Exception:
                logger.debug("summarizing a %s item failed", item.type, exc_info=True)
                message = None
            if item.type != "transaction":
                event_id = None  # session updates and aggregates have no event id
        elif item.type == "feedback":
            contexts = data.get("contexts")
            feedback = contexts.get("feedback") if isinstance(contexts, dict) else None
            message, kind = (feedback.get("message") if isinstance(feedback, dict) else None), "feedback"
        elif item.type == "user_report":
            message, kind = data.get("comments"), "user_report"
        else:
            message = event_message(data)
            event_type = data.get("type")
            kind = event_type if isinstance(event_type, str) else "error" if data.get("exception") else "default"
        arrivals.append(Arrival(now, project, str(kind), event_id, message if isinstance(message, str) else None))
    return arrivals


def _transaction_summary(data: dict[str, Any]) -> str:
    """``name (op): duration, N spans, trace <first 8 digits>`` of a stored transaction."""
    contexts = data.get("contexts")
    trace = contexts.get("trace") if isinstance(contexts, dict) else None
    trace = trace if isinstance(trace, dict) else {}
    name, op = data.get("transaction"), trace.get("op")
    start, end = time_span("transaction", data)
    spans = data.get("spans")
    parts = [
        _duration(end - start),
        _plural(len(spans) if isinstance(spans, list) else 0, "span"),
        f"trace {(valid_trace_id(trace.get('trace_id')) or '?')[:8]}",
    ]
    title = _clip(name, _MAX_NAME) if isinstance(name, str) and name.strip() else "(no name)"
    if isinstance(op, str) and op.strip():
        title += f" ({_clip(op, _MAX_OP)})"
    return f"{title}: {', '.join(parts)}"


def _session_summary(data: dict[str, Any]) -> str:
    """``status[, N errors], release R, sid <first 8 characters>`` of a stored session update."""
    parts = [str(data.get("status", "ok"))]
    errors = data.get("errors", 0)
    if isinstance(errors, int) and errors > 0:
        parts.append(_plural(errors, "error"))
    parts.append(f"release {_release(data)}")
    sid = data.get("sid")
    if isinstance(sid, str):
        parts.append(f"sid {(normalize_id(sid.strip()) or '')[:8]}")
    return ", ".join(parts)


def _aggregates_summary(data: dict[str, Any]) -> str:
    """``release R: N sessions (a exited, b errored, ...)`` of a stored ``sessions`` item, its buckets summed."""
    counts = dict.fromkeys(("exited", "errored", "crashed", "abnormal"), 0)
    aggregates = data.get("aggregates")
    for entry in aggregates if isinstance(aggregates, list) else ():
        for name in counts:
            value = entry.get(name, 0) if isinstance(entry, dict) else 0
            counts[name] += value if isinstance(value, int) else 0
    shown = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    total = _plural(sum(counts.values()), "session")
    return f"release {_release(data)}: {total}" + (f" ({shown})" if shown else "")


_SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "transaction": _transaction_summary,
    "session": _session_summary,
    "sessions": _aggregates_summary,
}
#: Arrival summaries cut a transaction's name, its op and a release at these many characters.
_MAX_NAME = 40
_MAX_OP = 24
_MAX_RELEASE = 40


def _release(data: dict[str, Any]) -> str:
    attrs = data.get("attrs")
    release = attrs.get("release") if isinstance(attrs, dict) else None
    return _clip(release, _MAX_RELEASE) if isinstance(release, str) else "?"


def _duration(seconds: float) -> str:
    """Milliseconds to a tenth (seconds, 4 digits, past 1000 s); ``? ms`` for no finite number."""
    milliseconds = seconds * 1000
    if not math.isfinite(milliseconds):
        return "? ms"
    return f"{milliseconds:.1f} ms" if milliseconds < 1e6 else f"{seconds:.4g} s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class _TooLarge(Exception):
    pass


def _inflate(data: bytes, wbits: int, limit: int, reserve: Callable[[int], None]) -> bytes:
    """Decompress ``data`` (several gzip members allowed); raise _TooLarge past ``limit`` bytes.

    Inflates at most :data:`_INFLATE_STEP` bytes at a time, taking each step (and the final
    join) from the memory budget before keeping it. The steps are kept as separate chunks:
    a growing buffer would be reallocated, briefly holding twice what was reserved.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        decompressor = zlib.decompressobj(wbits)
        pending = data
        while not decompressor.eof:
            chunk = decompressor.decompress(pending, min(_INFLATE_STEP, limit + 1 - total))
            if total + len(chunk) > limit:
                raise _TooLarge
            reserve(len(chunk))
            chunks.append(chunk)
            total += len(chunk)
            pending = decompressor.unconsumed_tail
            if not chunk and not pending:
                break
        if not decompressor.eof:
            raise zlib.error("compressed body is truncated")
        data = decompressor.unused_data
        if not data:
            reserve(total)
            return b"".join(chunks)
        if wbits != _GZIP_WBITS:
            raise zlib.error("unexpected data after the compressed body")


def _parse_auth(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in value.strip()[7:].split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    return fields


def _check_envelope(envelope: Envelope) -> None:
    """Sentry's rules on item combinations; raise EnvelopeParseError when broken."""
    feedback = len(envelope.items_of_type("feedback"))
    if feedback > 1:
        raise EnvelopeParseError(f"envelope has {feedback} feedback items; at most one is allowed")
    if feedback and envelope.items_of_type("transaction"):
        raise EnvelopeParseError("envelope has a feedback item together with a transaction item")


def _try_parse(body: bytes) -> Envelope | None:
    try:
        return Envelope.parse(body)
    except EnvelopeParseError:
        return None
