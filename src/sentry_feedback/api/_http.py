"""One request to the API: the Bearer token, retries of ``429`` and ``503``, errors from error answers.

:class:`_Requests` is the part of :class:`~sentry_feedback.api.FeedbackApi` that sends
requests; the rest of this module reads ``Retry-After`` and error bodies and encodes
request bodies as JSON.
"""

from __future__ import annotations

import builtins
import contextlib
import email.utils
import json
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any

import urllib3

from ._errors import _ERROR_CLASSES, ApiConnectionError, ApiError, RateLimited, ServerError
from ._models import Device, FeedbackUser, Locale, NameVersion, UserFeedback
from ._values import _format_datetime

_RETRY_STATUSES = frozenset({429, 503})
_MAX_ERROR_BODY = 1 << 20  # bytes of an error answer read for its detail
_CONNECTION_PREFIX = re.compile(r"^\w*HTTPS?Connection(?:Pool)?\([^)]*\):\s*")  # urllib3's "HTTPConnection(host=..)"


class _Requests:
    """Sending requests and reading their answers, for :class:`~sentry_feedback.api.FeedbackApi`.

    The attributes are set by ``FeedbackApi.__init__``.
    """

    retries: int
    max_retry_wait: float
    _token: str
    _pool: urllib3.PoolManager
    _timeout: urllib3.Timeout
    _retry: urllib3.Retry
    _user_agent: str
    _closed: threading.Event

    def _redact(self, text: str) -> str:
        if len(self._token) >= 3:
            text = text.replace(self._token, "[token]")
        return text

    def _request_json(self, method: str, url: str, payload: Any = None) -> tuple[urllib3.BaseHTTPResponse, Any]:
        """Make a request and parse its JSON answer (None for an empty one, like a ``204``)."""
        body = None
        if payload is not None:
            try:
                body = json.dumps(payload, default=_json_default, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise TypeError(f"cannot send this body as JSON: {exc}") from None
        response = self._request(method, url, body)
        try:
            data = response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise self._connection_error(method, url, exc) from exc
        finally:
            _discard(response)
        if not data.strip():
            return response, None
        try:
            return response, json.loads(data)
        except (ValueError, RecursionError):
            raise ApiError(
                f"HTTP {response.status} ({method} {urllib.parse.urlsplit(url).path}): the answer is not JSON",
                status=response.status,
                detail="the answer is not JSON",
                headers=response.headers,
                method=method,
                url=url,
            ) from None

    def _request(
        self, method: str, url: str, body: bytes | None = None, *, stream: bool = False
    ) -> urllib3.BaseHTTPResponse:
        """Send one request, retrying ``429``/``503``; return a successful answer (not yet read)."""
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json" if not stream else "*/*",
            "User-Agent": self._user_agent,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            if self._closed.is_set():
                raise ApiConnectionError(
                    f"{method} {url}: the client is closed", detail="the client is closed", method=method, url=url
                )
            try:
                response = self._pool.request(
                    method,
                    url,
                    body=body,
                    headers=headers,
                    timeout=self._timeout,
                    retries=self._retry,
                    preload_content=False,
                )
            except urllib3.exceptions.HTTPError as exc:
                raise self._connection_error(method, url, exc) from exc
            if response.status in _RETRY_STATUSES and attempt < self.retries:
                wait = _retry_wait(response.headers)
                wait = 2.0**attempt if wait is None else wait
                _discard(response)
                attempt += 1
                if self._closed.wait(min(wait, self.max_retry_wait, threading.TIMEOUT_MAX)):
                    raise ApiConnectionError(
                        f"{method} {url}: the client is closed", detail="the client is closed", method=method, url=url
                    )
                continue
            if response.status >= 300:
                raise self._error(method, url, response)
            return response

    def _connection_error(self, method: str, url: str, exc: Exception) -> ApiConnectionError:
        reason = getattr(exc, "reason", None) or exc
        detail = self._redact(_CONNECTION_PREFIX.sub("", str(reason)) or type(reason).__name__)
        message = self._redact(f"{method} {url}: could not get an answer: {detail}")
        return ApiConnectionError(message, detail=detail, method=method, url=url)

    def _error(self, method: str, url: str, response: urllib3.BaseHTTPResponse) -> ApiError:
        """The exception for an error answer, from its ``{"detail": ..., "errors": ...}`` body."""
        try:
            raw = response.read(_MAX_ERROR_BODY)
        except urllib3.exceptions.HTTPError:
            raw = b""
        finally:
            _discard(response)
        detail, errors = _error_body(raw)
        detail = self._redact(detail or response.reason or "")
        errors = {self._redact(key): [self._redact(problem) for problem in value] for key, value in errors.items()}
        status = response.status
        message = f"HTTP {status}"
        if response.reason:
            message += f" {response.reason}"
        message += f" ({method} {urllib.parse.urlsplit(url).path})"
        if detail:
            message += f": {detail}"
        if errors:
            message += " [" + "; ".join(f"{key}: {' '.join(value)}" for key, value in errors.items()) + "]"
        message = self._redact(message)
        kind = _ERROR_CLASSES.get(status) or (ServerError if status >= 500 else ApiError)
        common: dict[str, Any] = {
            "status": status,
            "detail": detail,
            "errors": errors,
            "headers": response.headers,
            "method": method,
            "url": url,
        }
        if kind is RateLimited:
            return RateLimited(message, retry_after=_retry_wait(response.headers), **common)
        return kind(message, **common)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return builtins.list(value)
    if isinstance(value, (NameVersion, Device, Locale, FeedbackUser, UserFeedback)):
        return value.to_json()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Finish with an answer: read what is left of a small body and give the connection back.

    A connection whose answer is not read to its end (a large error body, a download
    that failed half-way) is closed rather than put back in the pool.
    """
    with contextlib.suppress(Exception):
        if len(response.read(_MAX_ERROR_BODY)) >= _MAX_ERROR_BODY:
            response.close()
    with contextlib.suppress(Exception):
        response.release_conn()


def _retry_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``X-Sentry-Rate-Limit-Reset``."""
    retry_after = (headers.get("Retry-After") or "").strip()
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                moment = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError, IndexError, OverflowError):
                moment = None
            if moment is not None:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)
                return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())
        else:
            if math.isfinite(seconds):
                return max(0.0, seconds)
    reset = (headers.get("X-Sentry-Rate-Limit-Reset") or "").strip()
    if reset:
        try:
            epoch = float(reset)
        except ValueError:
            return None
        if math.isfinite(epoch):
            return max(0.0, epoch - time.time())
    return None


def _error_body(raw: bytes) -> tuple[str, dict[str, builtins.list[str]]]:
    """``(detail, per-field errors)`` of an error answer, whatever its shape."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", "replace").strip()
        return (" ".join(text.split())[:200] if text and not text.startswith("<") else ""), {}
    if not isinstance(body, dict):
        return (body if isinstance(body, str) else ""), {}
    detail = body.get("detail")
    if isinstance(detail, Mapping):  # {"detail": {"code": ..., "message": ...}}
        detail = detail.get("message") or detail.get("code")
    if not isinstance(detail, str):
        detail = "" if detail is None else json.dumps(detail, default=str)
    errors_obj = body.get("errors")
    if not isinstance(errors_obj, Mapping):  # DRF's bare {"field": ["problem"]}
        errors_obj = {key: value for key, value in body.items() if key != "detail"} if "detail" not in body else {}
    errors: dict[str, builtins.list[str]] = {}
    for key, value in errors_obj.items():
        problems = value if isinstance(value, builtins.list) else [value]
        errors[str(key)] = [
            problem if isinstance(problem, str) else json.dumps(problem, default=str) for problem in problems
        ]
    return detail, errors
