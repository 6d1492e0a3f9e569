"""Bearer-token authentication of the REST API, with Sentry's answers.

``Authorization: Bearer <token>``: no or a malformed header, or an unknown token, is a 401
(with ``WWW-Authenticate: Bearer``); a token without the scope a method needs (``read`` for
GET and HEAD, ``write`` for POST, PATCH and DELETE) is a 403.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._config import ApiToken, ServerConfig
from ._http import Answer, Reject

__all__ = ["authenticate", "scope_for"]

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}


def scope_for(method: str) -> str:
    """The scope a request with ``method`` needs."""
    return "write" if method in _WRITE_METHODS else "read"


def authenticate(config: ServerConfig, headers: Mapping[str, str], method: str) -> ApiToken:
    """The token of a request allowed to do ``method``; :class:`Reject` (401 or 403) otherwise."""
    header = headers.get("Authorization")
    if not header:
        raise Reject(Answer.error(401, "Authentication credentials were not provided.", _CHALLENGE))
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Reject(Answer.error(401, "Invalid authorization header: use 'Bearer <token>'.", _CHALLENGE))
    token = config.token(value.strip())
    if token is None:
        raise Reject(Answer.error(401, "Invalid token.", _CHALLENGE))
    if scope_for(method) not in token.scopes:
        raise Reject(Answer.error(403, "You do not have permission to perform this action."))
    return token
