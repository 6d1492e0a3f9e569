"""The feedback server's configuration: its organization, projects and API tokens.

One organization (a slug), one or more projects (slug, numeric id, DSN public key) and the
Bearer tokens of the REST API, each with its scopes. The default is what a developer wants
on a laptop: organization ``local`` and one project ``default`` (id ``1``, key ``public``).
:meth:`ServerConfig.load` reads the same from a JSON file::

    {
      "org": "acme",
      "projects": [
        {"slug": "web", "id": "1", "public_key": "0123456789abcdef0123456789abcdef"},
        {"slug": "mobile", "id": "2", "public_key": "fedcba9876543210fedcba9876543210"}
      ],
      "tokens": [{"value": "a-long-secret", "scopes": ["read", "write"]}]
    }
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SCOPES", "ApiToken", "Project", "ServerConfig", "new_token"]

#: The scopes a token may have: ``read`` (GET) and ``write`` (POST, PATCH, DELETE).
SCOPES = frozenset({"read", "write"})
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
_PROJECT_ID = re.compile(r"[1-9][0-9]{0,17}")
_PUBLIC_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN = re.compile(r"[\x21-\x7e]{8,512}")  # visible ASCII: it travels in an HTTP header


def new_token() -> str:
    """A new random API token: 64 hex digits (256 bits), like Sentry's user auth tokens."""
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Project:
    """A project: its ``slug`` (lowercase letters, digits, ``-``, ``_``), numeric ``id`` and DSN ``public_key``."""

    slug: str
    id: str
    public_key: str

    def __post_init__(self) -> None:
        if not isinstance(self.slug, str) or not _SLUG.fullmatch(self.slug):
            raise ValueError(f"invalid project slug {self.slug!r}: lowercase letters, digits, '-' and '_' (1-50)")
        object.__setattr__(self, "id", str(self.id))
        if not _PROJECT_ID.fullmatch(self.id):
            raise ValueError(f"invalid project id {self.id!r}: a positive integer")
        if not isinstance(self.public_key, str) or not _PUBLIC_KEY.fullmatch(self.public_key):
            raise ValueError(f"invalid public key {self.public_key!r}: letters, digits, '-' and '_' (1-64)")


@dataclass(frozen=True)
class ApiToken:
    """A Bearer token of the REST API and what it may do: ``read``, ``write`` or both.

    The token's value never shows in ``repr()``.
    """

    value: str = field(repr=False)
    scopes: frozenset[str] = SCOPES

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _TOKEN.fullmatch(self.value):
            raise ValueError("an API token is 8-512 visible ASCII characters")
        scopes = frozenset(self.scopes)
        if not scopes or not scopes <= SCOPES:
            raise ValueError(f"token scopes must be some of {sorted(SCOPES)}, not {sorted(scopes)}")
        object.__setattr__(self, "scopes", scopes)


@dataclass(frozen=True)
class ServerConfig:
    """The organization, projects and tokens a feedback server serves.

    ``tokens`` may be empty: the server then makes one read-and-write token at its first
    start and keeps it in its database (see :attr:`LocalReceiver.api_token`).
    """

    org: str = "local"
    projects: tuple[Project, ...] = (Project("default", "1", "public"),)
    tokens: tuple[ApiToken, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.org, str) or not _SLUG.fullmatch(self.org):
            raise ValueError(f"invalid organization slug {self.org!r}: lowercase letters, digits, '-' and '_'")
        projects = tuple(self.projects)
        tokens = tuple(self.tokens)
        if not projects:
            raise ValueError("a server needs at least one project")
        for what, values in (
            ("slug", [p.slug for p in projects]),
            ("id", [p.id for p in projects]),
            ("public key", [p.public_key for p in projects]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"two projects have the same {what}")
        object.__setattr__(self, "projects", projects)
        object.__setattr__(self, "tokens", tokens)

    @classmethod
    def load(cls, path: str | Path) -> ServerConfig:
        """Read a configuration from a JSON file (see the module documentation for its shape).

        ``OSError`` when the file cannot be read, ``ValueError`` naming the problem when it is
        not a valid configuration.
        """
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> ServerConfig:
        """A configuration from the parsed JSON of :meth:`load`; ``ValueError`` when it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("the configuration must be a JSON object")
        unknown = set(data) - {"org", "projects", "tokens"}
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        projects = [_project(entry) for entry in _list(data.get("projects", []), "projects")]
        tokens = [_token(entry) for entry in _list(data.get("tokens", []), "tokens")]
        return cls(
            org=data.get("org", "local"),
            projects=tuple(projects) or cls.projects,
            tokens=tuple(tokens),
        )

    def project(self, slug_or_id: str) -> Project | None:
        """The project with this slug or numeric id, or None."""
        for project in self.projects:
            if slug_or_id in (project.slug, project.id):
                return project
        return None

    def token(self, value: str) -> ApiToken | None:
        """The configured token with this value (compared in constant time), or None."""
        found = None
        for token in self.tokens:
            if secrets.compare_digest(token.value.encode(), value.encode()):
                found = token
        return found


def _list(value: Any, name: str) -> Iterable[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list")
    return value


def _project(entry: Any) -> Project:
    if not isinstance(entry, Mapping) or set(entry) != {"slug", "id", "public_key"}:
        raise ValueError('a project is {"slug": ..., "id": ..., "public_key": ...}')
    return Project(entry["slug"], str(entry["id"]), entry["public_key"])


def _token(entry: Any) -> ApiToken:
    if isinstance(entry, str):
        return ApiToken(entry)
    if not isinstance(entry, Mapping) or "value" not in entry or set(entry) - {"value", "scopes"}:
        raise ValueError('a token is "value" or {"value": ..., "scopes": ["read", "write"]}')
    scopes = entry.get("scopes", sorted(SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise ValueError("token scopes must be a list of strings")
    return ApiToken(entry["value"], frozenset(scopes))
