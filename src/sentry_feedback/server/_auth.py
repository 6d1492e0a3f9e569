"""Authentication of the REST API, with Sentry's answers: Bearer tokens, and the inbox's session cookie.

``Authorization: Bearer <token>``: no or a malformed header, or an unknown token, is a 401
(with ``WWW-Authenticate: Bearer``); a token without the scope a method needs (``read`` for
GET and HEAD, ``write`` for POST, PATCH and DELETE) is a 403.

The inbox page sends the token in its ``sf_session`` cookie (``HttpOnly``, ``SameSite=Strict``)
instead. A request authenticated by the cookie that changes something must also prove it comes
from the page (double-submit CSRF protection): an ``X-CSRF-Token`` header equal to the
``sf_csrf`` cookie, and an ``Origin``, when the browser sends one, of this server. Else a 403.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from ._config import ApiToken, ServerConfig
from ._http import Answer, Reject

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "authenticate", "cookies", "scope_for"]

SESSION_COOKIE = "sf_session"
CSRF_COOKIE = "sf_csrf"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}


def scope_for(method: str) -> str:
    """The scope a request with ``method`` needs."""
    return "write" if method in _WRITE_METHODS else "read"


def cookies(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's cookies by name (none when the header does not parse)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("Cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def authenticate(config: ServerConfig, headers: Mapping[str, str], method: str, *, origin: str) -> ApiToken:
    """The token of a request allowed to do ``method``; :class:`Reject` (401 or 403) otherwise.

    ``origin`` is this server's ``scheme://host[:port]``, which a cookie-authenticated change must come from.
    """
    header = headers.get("Authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Reject(Answer.error(401, "Invalid authorization header: use 'Bearer <token>'.", _CHALLENGE))
        token = config.token(value.strip())
    else:
        jar = cookies(headers)
        session = jar.get(SESSION_COOKIE)
        if not session:
            raise Reject(Answer.error(401, "Authentication credentials were not provided.", _CHALLENGE))
        token = config.token(urllib.parse.unquote(session))
        if token is not None and method in _WRITE_METHODS:
            _check_csrf(headers, jar, origin)
    if token is None:
        raise Reject(Answer.error(401, "Invalid token.", _CHALLENGE))
    if scope_for(method) not in token.scopes:
        raise Reject(Answer.error(403, "You do not have permission to perform this action."))
    return token


def _check_csrf(headers: Mapping[str, str], jar: Mapping[str, str], origin: str) -> None:
    expected = jar.get(CSRF_COOKIE, "")
    given = headers.get("X-CSRF-Token", "")
    if not expected or not secrets.compare_digest(expected.encode(), given.encode()):
        raise Reject(Answer.error(403, "CSRF check failed: send the X-CSRF-Token header with the sf_csrf cookie."))
    sent_origin = headers.get("Origin")
    if sent_origin is not None and sent_origin != origin:
        raise Reject(Answer.error(403, f"CSRF check failed: a request from {sent_origin[:100]!r}."))
