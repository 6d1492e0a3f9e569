"""The exceptions of the API client: one class per kind of error answer, all :class:`ApiError`."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import urllib3

from ..exceptions import SentryFeedbackError


class ApiError(SentryFeedbackError):
    """An error answer from the API, or a request that could not be made.

    ``status`` is the HTTP status (0 when no answer came), ``detail`` the server's
    ``detail`` text, ``errors`` the per-field problems of a ``400``
    (``{"message": ["This field is required."]}``), ``headers`` the answer's headers
    (case-insensitive), ``method`` and ``url`` the request. The message never contains the token.

    >>> try:
    ...     api.get("0" * 32)
    ... except ApiError as error:
    ...     print(error.status, error.detail)
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        detail: str = "",
        errors: Mapping[str, builtins.list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.errors: Mapping[str, builtins.list[str]] = MappingProxyType(dict(errors or {}))
        self.headers: Mapping[str, str] = MappingProxyType(urllib3.HTTPHeaderDict(headers or {}))
        self.method = method
        self.url = url


class BadRequest(ApiError):
    """``400``: a bad parameter or body; see :attr:`errors` for per-field problems.

    Also raised without a request when the client cannot tell which project a
    feedback belongs to (pass ``project=``).
    """


class Unauthorized(ApiError):
    """``401``: the token is missing, invalid or expired."""


class Forbidden(ApiError):
    """``403``: the token may not do this (for example a read-only token that writes)."""


class NotFound(ApiError):
    """``404``: no such organization, project, feedback, attachment or event."""


class RateLimited(ApiError):
    """``429`` still, after the retries; ``retry_after`` is the seconds the server asked for (or None)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """``5xx``: the server failed (``503`` only after the retries)."""


class ApiConnectionError(ApiError):
    """No answer (``status`` 0): connection refused or reset, DNS failure, timeout, TLS error, closed client."""


_ERROR_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    429: RateLimited,
}
