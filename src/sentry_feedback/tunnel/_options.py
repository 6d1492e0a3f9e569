"""The tunnel's configuration: one frozen, validated object."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .._dsn import Dsn
from .._options import MAX_HTTP_TIMEOUT, MiB, _check_int, _check_number, _check_type

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DEFAULT_MAX_HEADER_SIZE", "DEFAULT_TIMEOUT", "TunnelOptions"]

#: The largest body forwarded by default: ample for browser envelopes (events, feedback with a
#: screenshot, replays). The server applies its own limits after this one.
DEFAULT_MAX_BODY_SIZE = 20 * MiB
#: The longest envelope header line read before deciding where the envelope goes.
DEFAULT_MAX_HEADER_SIZE = 64 * 1024
#: Seconds for connecting upstream, for each read of its answer, and for each wait on the client's body.
DEFAULT_TIMEOUT = 10.0
#: Connections kept open per upstream host for reuse.
DEFAULT_MAX_CONNECTIONS = 10
#: Past these the values are mistakes.
MAX_BODY_SIZE = 1024 * MiB
MAX_CONNECTIONS = 1000

#: A DSN public key as Sentry makes them (32 hex digits), loosely: it goes into a header.
PUBLIC_KEY = re.compile(r"[A-Za-z0-9._~-]{1,128}")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


@dataclass(frozen=True)
class TunnelOptions:
    """Everything a :class:`~sentry_feedback.tunnel.Tunnel` was configured with, validated.

    Read it as ``tunnel.options``; see the tunnel's documentation for each field.
    """

    allowed: tuple[Dsn, ...]
    match_public_key: bool = True
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    timeout: float = DEFAULT_TIMEOUT
    use_x_forwarded_for: bool = False
    cors_origins: tuple[str, ...] = ()
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    ca_certs: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    http_proxy: str | None = None
    https_proxy: str | None = None
    keep_alive: bool = True

    def __post_init__(self) -> None:
        if not self.allowed:
            raise ValueError("a tunnel needs at least one allowed DSN")
        for dsn in self.allowed:
            if not isinstance(dsn, Dsn):
                raise ValueError(f"allowed DSNs must be Dsn objects or strings, not {type(dsn).__name__}")
            if not PUBLIC_KEY.fullmatch(dsn.public_key):
                raise ValueError(f"allowed DSN {dsn}: the public key has characters a DSN key never has")
        for name in ("match_public_key", "use_x_forwarded_for", "keep_alive"):
            _check_type(name, getattr(self, name), (bool,))
        for name in ("ca_certs", "cert_file", "key_file", "http_proxy", "https_proxy"):
            _check_type(name, getattr(self, name), (str, type(None)))
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("option 'key_file' needs 'cert_file'")
        _check_int("max_body_size", self.max_body_size, 1, MAX_BODY_SIZE)
        _check_int("max_header_size", self.max_header_size, 64, MAX_BODY_SIZE)
        _check_int("max_connections", self.max_connections, 1, MAX_CONNECTIONS)
        _check_number("timeout", self.timeout, 0.0, MAX_HTTP_TIMEOUT, open_low=True)
        for origin in self.cors_origins:
            if not isinstance(origin, str) or not (origin == "*" or _ORIGIN.fullmatch(origin)):
                raise ValueError(f"cors_origins: {origin!r} is not '*' nor an origin like 'https://app.example.com'")


def parse_allowed(allowed: Iterable[str | Dsn] | str | Dsn) -> tuple[Dsn, ...]:
    """The allowed DSNs as :class:`Dsn` objects (``ValueError`` for one that does not parse)."""
    if isinstance(allowed, (str, Dsn)):
        allowed = [allowed]
    return tuple(value if isinstance(value, Dsn) else Dsn.parse(value) for value in allowed)


def normalize_origins(origins: Iterable[str] | str) -> tuple[str, ...]:
    """``cors_origins`` as a tuple, lower-cased, without a trailing slash."""
    if isinstance(origins, str):
        origins = [origins]
    return tuple(o.rstrip("/").lower() if isinstance(o, str) else o for o in origins)
