"""The envelope endpoint: Sentry's ingest protocol, checked the way Relay checks it.

``POST /api/<project_id>/envelope/`` with ``X-Sentry-Auth`` (or ``sentry_key`` in the
query string), gzip or deflate bodies inflated in bounded steps against the server's
memory budget, envelopes of at most :data:`MAX_ENVELOPE_ITEMS` items; every malformed
input is a 400 whose ``detail`` says why.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from .._envelope import Envelope
from ..exceptions import EnvelopeParseError
from ._http import Answer, BaseHandler, Headers, Reject, Server

if TYPE_CHECKING:
    from ._receiver import LocalReceiver

__all__ = ["IngestHandler", "ReceivedRequest"]

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


class IngestHandler(BaseHandler):
    """The envelope endpoint, ``POST /api/<project_id>/envelope/``, of a :class:`LocalReceiver`."""

    @property
    def _receiver(self) -> LocalReceiver:
        return cast("LocalReceiver", cast(Server, self.server).receiver)

    # -- dispatch ----------------------------------------------------------------------

    def do_POST(self) -> None:
        """Envelope requests; any other path is 404."""
        split = urllib.parse.urlsplit(self.path)
        match = _ENVELOPE_PATH.match(split.path)
        try:
            raw = self._read_body()
        except Reject as reject:
            if match is not None:
                self._receiver._record(self._received(b"", reject.answer.status, None))
            self._answer(reject.answer, close=reject.close)
            return
        if match is None:
            self._answer(Answer.error(404, f"no such endpoint: POST {split.path}"))
            return
        body, envelope, answer = self._envelope_request(split, match.group("project_id"), raw)
        self._receiver._record(self._received(body, answer.status, envelope))
        self._answer(answer)

    def _other_method(self) -> None:
        """Any method but POST: 405 on the envelope endpoint, 404 elsewhere."""
        try:
            self._read_body()
        except Reject as reject:
            self._answer(reject.answer, close=reject.close)
            return
        path = urllib.parse.urlsplit(self.path).path
        if _ENVELOPE_PATH.match(path):
            self._answer(Answer.error(405, f"method {self.command} not allowed", {"Allow": "POST"}))
        else:
            self._answer(Answer.error(404, f"no such endpoint: {self.command} {path}"))

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = _other_method

    def do_OPTIONS(self) -> None:
        """CORS preflight of the envelope endpoint, so browser SDKs can post to it; 404 elsewhere."""
        if not _ENVELOPE_PATH.match(urllib.parse.urlsplit(self.path).path):
            self._other_method()
            return
        try:
            self._read_body()
        except Reject as reject:
            self._answer(reject.answer, close=reject.close)
            return
        requested = self.headers.get("Access-Control-Request-Headers") or ""
        allowed = ", ".join(name.strip() for name in requested.split(",") if _HEADER_NAME.fullmatch(name.strip()))
        preflight = {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": allowed or _CORS_ALLOWED_HEADERS,
            "Access-Control-Max-Age": "86400",
        }
        self._answer(Answer(204, b"", preflight))

    def _answer(self, answer: Answer, *, close: bool = False) -> None:
        """Every answer of the envelope endpoint carries the CORS headers a browser SDK needs."""
        if _ENVELOPE_PATH.match(urllib.parse.urlsplit(self.path).path):
            answer = Answer(answer.status, answer.body, {**_CORS_HEADERS, **answer.headers})
        super()._answer(answer, close=close)

    # -- the envelope endpoint ---------------------------------------------------------

    def _envelope_request(
        self, split: urllib.parse.SplitResult, project_id: str, raw: bytes
    ) -> tuple[bytes, Envelope | None, Answer]:
        receiver = self._receiver
        body = raw
        try:
            self._check_auth(split.query)
            if project_id != receiver.project_id:
                raise Reject(Answer.error(404, f"unknown project {project_id!r}"))
            body = self._decode(raw)
            canned = receiver._take_canned()
            if canned is not None and not 200 <= canned.status < 300:
                return body, _try_parse(body), canned
            try:
                envelope = Envelope.parse(body, max_items=MAX_ENVELOPE_ITEMS)
            except EnvelopeParseError as exc:
                raise Reject(Answer.error(400, str(exc))) from None
            try:
                _check_envelope(envelope)
                receiver.store.store_envelope(project_id, envelope, len(body))
            except EnvelopeParseError as exc:
                return body, envelope, Answer.error(400, str(exc))
            except UnicodeEncodeError as exc:  # a lone surrogate escape decoded from JSON cannot be stored
                return body, envelope, Answer.error(400, f"invalid text in the envelope: {exc.reason}")
            except Exception as exc:  # a storage failure must answer, not kill the connection
                logger.debug("storing an envelope failed", exc_info=True)
                return body, envelope, Answer.error(500, f"could not store the envelope: {exc}")
            if canned is not None:
                if canned.body or canned.status == 204:
                    return body, envelope, canned
                default = Answer.json(canned.status, {"id": envelope.event_id})
                return (
                    body,
                    envelope,
                    Answer(canned.status, default.body, {**default.headers, **canned.headers}),
                )
            return body, envelope, Answer.json(200, {"id": envelope.event_id})
        except Reject as reject:
            return body, None, reject.answer

    def _check_auth(self, query: str) -> None:
        key: str | None = None
        for header in ("X-Sentry-Auth", "Authorization"):
            value = self.headers.get(header)
            if value and value.strip()[:7].lower() == "sentry ":
                fields = _parse_auth(value)
                key = fields.get("sentry_key")
                if key is None:
                    raise Reject(Answer.error(401, f"{header} header has no sentry_key"))
                break
        if key is None:
            keys = urllib.parse.parse_qs(query).get("sentry_key")
            key = keys[0] if keys else None
        if key is None:
            raise Reject(Answer.error(401, "missing authorization: no X-Sentry-Auth header or sentry_key"))
        if key != self._receiver.public_key:
            raise Reject(Answer.error(401, f"invalid sentry_key {key!r}"))

    def _decode(self, raw: bytes) -> bytes:
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        limit = self._receiver.max_body_size
        try:
            if encoding in ("identity", ""):
                return raw
            if encoding in ("gzip", "x-gzip"):
                return _inflate(raw, _GZIP_WBITS, limit, self._reserve)
            if encoding == "deflate":
                try:
                    return _inflate(raw, _ZLIB_WBITS, limit, self._reserve)
                except zlib.error:
                    return _inflate(raw, _RAW_DEFLATE_WBITS, limit, self._reserve)
        except zlib.error as exc:
            raise Reject(Answer.error(400, f"invalid {encoding} body: {exc}")) from None
        except _TooLarge:
            raise Reject(Answer.error(413, f"decoded body is larger than {limit} bytes")) from None
        raise Reject(Answer.error(400, f"unsupported Content-Encoding {encoding!r}"))

    def _received(self, body: bytes, status: int, envelope: Envelope | None) -> ReceivedRequest:
        return ReceivedRequest(
            method=self.command,
            path=self.path,
            headers=Headers(self.headers.items()),
            body=body,
            status=status,
            envelope=envelope,
        )


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
