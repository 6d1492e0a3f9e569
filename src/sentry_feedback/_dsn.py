"""The DSN: where and as whom the SDK sends."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from ._version import __version__

__all__ = ["Dsn"]

SDK_NAME = "sentry.python.feedback"
USER_AGENT = f"sentry-feedback/{__version__}"


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN: ``{scheme}://{public_key}[:{secret}]@{host}[:{port}]/{prefix/}{project_id}``.

    >>> Dsn.parse("https://key@o1.ingest.sentry.io/42").envelope_url
    'https://o1.ingest.sentry.io/api/42/envelope/'
    """

    scheme: str
    public_key: str
    host: str
    project_id: str
    port: int | None = None
    path_prefix: str = ""
    secret_key: str | None = None

    @classmethod
    def parse(cls, value: str) -> Dsn:
        """Parse ``value``; raise ``ValueError`` naming the part that is wrong."""
        if not isinstance(value, str):
            raise ValueError(f"DSN must be a string, not {type(value).__name__}")
        try:
            parts = urllib.parse.urlsplit(value.strip())
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid DSN {value!r}: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"invalid DSN {value!r}: scheme must be http or https, not {parts.scheme!r}")
        if not parts.username:
            raise ValueError(f"invalid DSN {value!r}: missing public key (before '@')")
        if not parts.hostname:
            raise ValueError(f"invalid DSN {value!r}: missing host")
        path = parts.path.rstrip("/")
        prefix, _, project_id = path.rpartition("/")
        if not project_id:
            raise ValueError(f"invalid DSN {value!r}: missing project id (last path segment)")
        if not (project_id.isascii() and project_id.isdigit()):
            raise ValueError(f"invalid DSN {value!r}: project id must be a number, not {project_id!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"invalid DSN {value!r}: unexpected query or fragment")
        host = parts.hostname
        if ":" in host:  # IPv6 literal: keep the brackets in URLs
            host = f"[{host}]"
        return cls(
            scheme=parts.scheme,
            public_key=urllib.parse.unquote(parts.username),
            secret_key=urllib.parse.unquote(parts.password) if parts.password else None,
            host=host,
            port=port,
            path_prefix=prefix.strip("/"),
            project_id=project_id,
        )

    @property
    def netloc(self) -> str:
        """``host[:port]`` as it appears in URLs."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def envelope_url(self) -> str:
        """The URL envelopes are POSTed to."""
        prefix = f"/{self.path_prefix}" if self.path_prefix else ""
        return f"{self.scheme}://{self.netloc}{prefix}/api/{self.project_id}/envelope/"

    def auth_header(self, client: str = USER_AGENT) -> str:
        """The ``X-Sentry-Auth`` header value for this DSN."""
        value = f"Sentry sentry_version=7, sentry_key={self.public_key}, sentry_client={client}"
        if self.secret_key:
            value += f", sentry_secret={self.secret_key}"
        return value

    def __str__(self) -> str:
        secret = f":{self.secret_key}" if self.secret_key else ""
        prefix = f"{self.path_prefix}/" if self.path_prefix else ""
        return f"{self.scheme}://{self.public_key}{secret}@{self.netloc}/{prefix}{self.project_id}"
