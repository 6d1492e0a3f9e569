"""What the tunnel answers, and the two ways a request ends early."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from .._web import status_line

__all__ = ["TunnelResponse"]

_OWN_HEADERS = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class TunnelResponse:
    """An answer of the tunnel: the server's, or the tunnel's own (a JSON ``{"detail": ...}``)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def status_line(self) -> str:
        """``"200 OK"``: the status as WSGI's ``start_response`` takes it."""
        return status_line(self.status)


class AnswerNow(Exception):
    """Stop and answer ``response``; ``note`` is for the debug log."""

    def __init__(self, response: TunnelResponse, note: str = "") -> None:
        super().__init__(response.status)
        self.response = response
        self.note = note


class BodyFailed(Exception):
    """The client's body could not be read to its end (gone, stalled, short): ``status`` to answer.

    Not an ``OSError``: raised inside the body sent upstream, it must reach the tunnel
    through urllib3 as it is, not be taken for a network error of the server.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> TunnelResponse:
    """The tunnel's own answer: ``{"detail": ...}`` as JSON."""
    body = json.dumps({"detail": detail}).encode()
    return TunnelResponse(status, {**_OWN_HEADERS, **(headers or {})}, body)


def detail_of(response: TunnelResponse) -> str:
    """The ``detail`` of one of the tunnel's own answers (``""`` for others)."""
    try:
        detail = json.loads(response.body).get("detail")
    except (ValueError, AttributeError):
        return ""
    return detail if isinstance(detail, str) else ""
