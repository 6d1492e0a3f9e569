"""What the endpoint answers: JSON (or, to a browser posting without JavaScript, a small HTML page)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from .._web import status_line

__all__ = ["EndpointResponse", "Refusal"]

_COMMON_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)
_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class EndpointResponse:
    """One answer of the endpoint: status, headers and body, for any framework to send."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def status_line(self) -> str:
        """``"429 Too Many Requests"``: the status as WSGI's ``start_response`` takes it."""
        return status_line(self.status)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), if set."""
        lower = name.lower()
        return next((value for key, value in self.headers if key.lower() == lower), None)


class Refusal(Exception):
    """A request the endpoint will not take: the status, a stable ``code`` and what is wrong.

    ``field`` names the form field at fault; ``headers`` go on the answer (``Retry-After``, ``Allow``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.headers = headers
        self.extra = extra or {}

    def payload(self) -> dict[str, object]:
        """The JSON body: ``{"error": code, "detail": ..., "field"?: ..., ...}``."""
        body: dict[str, object] = {"error": self.code, "detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


@dataclass(frozen=True)
class Answer:
    """How to answer one request: JSON, or HTML for a browser's plain form post; extra headers (CORS)."""

    html: bool = False
    headers: tuple[tuple[str, str], ...] = field(default=())

    def json(
        self, status: int, payload: dict[str, object], headers: tuple[tuple[str, str], ...] = ()
    ) -> EndpointResponse:
        """``payload`` as JSON, or as a page saying the same when the browser asked for HTML."""
        if self.html:
            return EndpointResponse(
                status,
                (
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Security-Policy", _PAGE_CSP),
                    *_COMMON_HEADERS,
                    *headers,
                    *self.headers,
                ),
                _page(status, payload).encode("utf-8"),
            )
        body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        return EndpointResponse(
            status, (("Content-Type", "application/json"), *_COMMON_HEADERS, *headers, *self.headers), body
        )

    def refusal(self, refusal: Refusal) -> EndpointResponse:
        """The answer for ``refusal``."""
        return self.json(refusal.status, refusal.payload(), refusal.headers)


def _page(status: int, payload: dict[str, object]) -> str:
    if status < 300:
        title = "Thank you"
        text = "Thank you! Your feedback was received."
        reference = payload.get("id")
        if isinstance(reference, str):
            text += f" Reference: <code>{html.escape(reference)}</code>."
    else:
        title = "Feedback not sent"
        text = f"Sorry, your feedback was not sent: {html.escape(str(payload.get('detail', '')))}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>"
        f'<body><main><h1>{title}</h1><p role="status">{text}</p>'
        "<p>Use your browser's Back button to return to the page.</p></main></body></html>"
    )
