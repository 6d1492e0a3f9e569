"""The steps of forwarding one request, shared by the WSGI app, ``Tunnel.forward`` and the ASGI app.

1. :meth:`Forwarder.begin`: method, ``Content-Encoding`` and ``Content-Length`` are checked
   (405, 415, 400, 411) before any of the body is read;
2. :meth:`Forwarder.route`: the envelope header line's ``dsn`` must parse and match an
   allowed DSN (400, 403); nothing has been contacted yet;
3. :meth:`Forwarder.exchange` (blocking): what was read and the rest of the body are
   streamed to the *configured* DSN's envelope endpoint; the body counts its bytes and, past
   ``max_body_size``, raises inside the upstream request, which is then cut off before it is
   complete (the server never gets a partial envelope) and the client gets a 413;
4. the server's status, body and rate-limit headers go back to the client; a server that
   cannot be reached gives a 502, one that does not answer in time a 504.

Steps raise :class:`AnswerNow` to answer early and :class:`BodyFailed` when the client's body
ends badly; the entry points turn both into answers (:meth:`Forwarder.refused`,
:meth:`Forwarder.body_failed`) and add the CORS headers (:meth:`Forwarder.finish`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .._dsn import Dsn
from .._version import __version__
from ._allow import AllowList
from ._answers import AnswerNow, BodyFailed, TunnelResponse, detail_of, error
from ._header import ENCODINGS
from ._options import PUBLIC_KEY, TunnelOptions
from ._reading import Incoming
from ._upstream import Upstream, UpstreamError

__all__: list[str] = []

logger = logging.getLogger("sentry_feedback")

#: The ``User-Agent`` of the tunnel's requests.
USER_AGENT = f"sentry-feedback-tunnel/{__version__}"
#: ``X-Forwarded-For`` entries kept from a trusted chain (the nearest ones).
MAX_FORWARDED_HOPS = 16
_MAX_DSN = 2048
_MAX_PASSED_HEADER = 2048
_SDK_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+")


@dataclass(frozen=True)
class Route:
    """Where an allowed envelope goes: the configured DSN, and the auth to send with it."""

    dsn: Dsn
    public_key: str
    client: str


class Forwarder:
    """The allow-list, the upstream connections and the steps of one request (thread-safe)."""

    def __init__(self, options: TunnelOptions) -> None:
        self._options = options
        self._allowed = AllowList(options.allowed, match_public_key=options.match_public_key)
        self._upstream = Upstream(options.allowed, options)

    @property
    def options(self) -> TunnelOptions:
        """The tunnel's configuration."""
        return self._options

    def close(self) -> None:
        """Close the pooled upstream connections."""
        self._upstream.close()

    def begin(self, method: str, headers: Mapping[str, str], peer: str | None, *, length_required: bool) -> Incoming:
        """Check what the request line and headers say, before any of the body is read."""
        if method == "OPTIONS":
            raise AnswerNow(self._preflight(headers), "preflight")
        if method != "POST":
            raise AnswerNow(error(405, f"method {method[:20]!r} not allowed: POST an envelope", _ALLOW))
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding == "identity":
            encoding = ""
        if encoding and encoding not in ENCODINGS:
            detail = f"unsupported Content-Encoding {encoding[:40]!r}: send gzip, deflate or none"
            raise AnswerNow(error(415, detail))
        length: int | None = None
        declared = headers.get("content-length")
        if declared is not None:
            values = {value.strip() for value in declared.split(",")}
            value = values.pop()
            if values or not value.isascii() or not value.isdigit() or len(value) > 18:
                raise AnswerNow(error(400, "invalid Content-Length"))
            length = int(value)
        elif length_required:
            raise AnswerNow(error(411, "Content-Length required"))
        return Incoming(length, encoding, self._forwarded(headers, peer), peer)

    def route(self, line: bytes) -> Route:
        """Where the envelope whose header line is ``line`` goes; a 400 or 403 :class:`AnswerNow` otherwise."""
        try:
            header = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise AnswerNow(error(400, "the envelope header is not UTF-8")) from None
        except (ValueError, RecursionError):
            raise AnswerNow(error(400, "the envelope header is not JSON")) from None
        if not isinstance(header, dict):
            raise AnswerNow(error(400, "the envelope header must be a JSON object"))
        value = header.get("dsn")
        if value is None:
            detail = "the envelope header has no dsn (browser SDKs add it when their tunnel option is set)"
            raise AnswerNow(error(400, detail))
        if not isinstance(value, str) or len(value) > _MAX_DSN:
            raise AnswerNow(error(400, "the envelope header's dsn must be a DSN string"))
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            # URL parsing would quietly drop tabs and newlines; a DSN never has them.
            raise AnswerNow(error(400, "the envelope header's dsn is not a valid DSN"), f"dsn {value[:200]!r}")
        try:
            dsn = Dsn.parse(value)
        except ValueError:
            invalid = error(400, "the envelope header's dsn is not a valid DSN")
            raise AnswerNow(invalid, f"dsn {value[:200]!r}") from None
        target = self._allowed.find(dsn)
        if target is None:
            note = f"project {dsn.project_id} at {dsn.netloc[:200]!r} is not allowed"
            raise AnswerNow(error(403, "the envelope's DSN is not one this tunnel forwards to"), note)
        if not PUBLIC_KEY.fullmatch(dsn.public_key):
            raise AnswerNow(error(400, "the envelope header's dsn has an invalid public key"))
        return Route(target, dsn.public_key, _sdk_client(header.get("sdk")))

    def exchange(self, incoming: Incoming, route: Route, body: Iterable[bytes], started: float) -> TunnelResponse:
        """Send ``body`` upstream (blocking) and make the client's answer of the server's."""
        headers = {
            "Content-Type": "application/x-sentry-envelope",
            "User-Agent": USER_AGENT,
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={route.public_key}, sentry_client={route.client}",
            **incoming.forwarded,
        }
        if incoming.encoding:
            headers["Content-Encoding"] = incoming.encoding
        if incoming.length is not None:
            headers["Content-Length"] = str(incoming.length)
        dsn = route.dsn
        try:
            answer = self._upstream.post(dsn, body, headers, chunked=incoming.length is None)
        except UpstreamError as exc:
            logger.warning("tunnel: %s", exc.detail)
            return error(exc.status, exc.public)
        if not 200 <= answer.status < 600 or 300 <= answer.status < 400:
            detail = f"{dsn.netloc} answered with status {answer.status}"
            logger.warning("tunnel: %s", detail)
            return error(502, detail)
        if logger.isEnabledFor(logging.DEBUG):
            elapsed = (time.monotonic() - started) * 1000
            limits = answer.headers.get("X-Sentry-Rate-Limits")
            note = f", rate limits {limits!r}" if limits else ""
            logger.debug(
                "tunnel: forwarded an envelope of %s from %s to project %s at %s: %d in %.0f ms%s",
                "?" if incoming.length is None else f"{incoming.length} bytes",
                incoming.peer,
                dsn.project_id,
                dsn.netloc,
                answer.status,
                elapsed,
                note,
            )
        return TunnelResponse(answer.status, {**answer.headers, "X-Content-Type-Options": "nosniff"}, answer.body)

    def refused(self, answer: AnswerNow, peer: str | None) -> TunnelResponse:
        """The early answer, logged."""
        if answer.response.status != 204 and logger.isEnabledFor(logging.DEBUG):
            detail = detail_of(answer.response)
            note = f" ({answer.note})" if answer.note else ""
            logger.debug("tunnel: answered %d to %s: %s%s", answer.response.status, peer, detail, note)
        return answer.response

    def body_failed(self, failed: BodyFailed, peer: str | None) -> TunnelResponse:
        """The answer when the client's body ended badly; nothing was delivered upstream."""
        logger.debug("tunnel: the body from %s failed: %s; nothing was delivered", peer, failed.detail)
        return error(failed.status, failed.detail)

    def failed(self) -> TunnelResponse:
        """The answer when the tunnel itself failed (logged with the traceback)."""
        logger.exception("tunnel: could not handle a request")
        return error(500, "the tunnel failed; see the server's log")

    def finish(self, response: TunnelResponse, headers: Mapping[str, str]) -> TunnelResponse:
        """``response`` with the CORS headers the request's ``Origin`` earns."""
        cors = self._cors(headers.get("origin"))
        return TunnelResponse(response.status, {**response.headers, **cors}, response.body) if cors else response

    # -- headers ------------------------------------------------------------------------------

    def _forwarded(self, headers: Mapping[str, str], peer: str | None) -> dict[str, str]:
        """``X-Forwarded-For`` (the trusted chain, then the peer) and the other headers passed upstream."""
        chain: list[str] = []
        if self._options.use_x_forwarded_for:
            chain = [a for a in map(_address, headers.get("x-forwarded-for", "").split(",")) if a is not None]
            chain = chain[-MAX_FORWARDED_HOPS:]
        address = _address(peer or "")
        if address is not None:
            chain.append(address)
        forwarded: dict[str, str] = {}
        if chain:
            forwarded["X-Forwarded-For"] = ", ".join(chain)
            # Sentry takes the client's address from here first (as for its own tunnels).
            forwarded["X-Sentry-Forwarded-For"] = chain[0]
        for name in ("Origin", "Referer"):
            value = headers.get(name.lower())
            if value and len(value) <= _MAX_PASSED_HEADER and value.isascii() and value.isprintable():
                forwarded[name] = value
        return forwarded

    def _cors(self, origin: str | None) -> dict[str, str]:
        allowed = self._options.cors_origins
        if not allowed or origin is None:
            return {}
        if "*" in allowed:
            value = "*"
        elif origin.rstrip("/").lower() in allowed:
            value = origin
        else:
            return {}
        return {
            "Access-Control-Allow-Origin": value,
            "Access-Control-Expose-Headers": "Retry-After, X-Sentry-Rate-Limits",
            "Vary": "Origin",
        }

    def _preflight(self, headers: Mapping[str, str]) -> TunnelResponse:
        if not self._cors(headers.get("origin")):
            return TunnelResponse(204, dict(_ALLOW))
        preflight = {
            **_ALLOW,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type, Content-Encoding",
            "Access-Control-Max-Age": "86400",
        }
        return TunnelResponse(204, preflight)


_ALLOW = {"Allow": "POST, OPTIONS"}


def _address(value: str) -> str | None:
    """``value`` as a normalized IP address, or ``None`` when it is not one."""
    value = value.strip()
    if not value or len(value) > 64:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _sdk_client(sdk: object) -> str:
    """``name/version`` of the envelope's ``sdk`` for ``X-Sentry-Auth``, when they are plain tokens."""
    if isinstance(sdk, dict):
        name, version = sdk.get("name"), sdk.get("version")
        if (
            isinstance(name, str)
            and isinstance(version, str)
            and 0 < len(name) <= 64
            and 0 < len(version) <= 64
            and set(name + version) <= _SDK_NAME
        ):
            return f"{name}/{version}"
    return USER_AGENT
