"""The DSN: where and as whom the SDK sends."""

from __future__ import annotations

from ._record import Frozen
from ._version import __version__

TYPE_CHECKING = False

__all__ = ["Dsn"]

SDK_NAME = "sentry.python.feedback"
USER_AGENT = f"sentry-feedback/{__version__}"


class Dsn(Frozen):
    """A parsed DSN: ``{scheme}://{public_key}[:{secret}]@{host}[:{port}]/{prefix/}{project_id}``.

    Frozen and hashable; equal when all fields are.

    >>> Dsn.parse("https://key@o1.ingest.sentry.io/42").envelope_url
    'https://o1.ingest.sentry.io/api/42/envelope/'
    """

    __slots__ = _fields = ("scheme", "public_key", "host", "project_id", "port", "path_prefix", "secret_key")

    #: ``http`` or ``https``.
    scheme: str
    #: The key before ``@``.
    public_key: str
    #: The host name (an IPv6 address in brackets).
    host: str
    #: The project id (digits), the last path segment.
    project_id: str
    #: The port, or ``None`` for the scheme's default.
    port: int | None
    #: The path before the project id, without surrounding slashes (usually empty).
    path_prefix: str
    #: The legacy secret key after ``:``, or ``None``.
    secret_key: str | None

    def __init__(
        self,
        scheme: str,
        public_key: str,
        host: str,
        project_id: str,
        port: int | None = None,
        path_prefix: str = "",
        secret_key: str | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "scheme", scheme)
        setattr_(self, "public_key", public_key)
        setattr_(self, "host", host)
        setattr_(self, "project_id", project_id)
        setattr_(self, "port", port)
        setattr_(self, "path_prefix", path_prefix)
        setattr_(self, "secret_key", secret_key)

    @classmethod
    def parse(cls, value: str) -> Dsn:
        """Parse ``value``; raise ``ValueError`` naming the part that is wrong."""
        if not isinstance(value, str):
            raise ValueError(f"DSN must be a string, not {type(value).__name__}")
        text = value.strip()
        parts = _split_plain(text) or _split_with_urllib(value, text)
        scheme, username, password, hostname, port, path, query_or_fragment = parts
        if scheme not in ("http", "https"):
            raise ValueError(f"invalid DSN {value!r}: scheme must be http or https, not {scheme!r}")
        if not username:
            raise ValueError(f"invalid DSN {value!r}: missing public key (before '@')")
        if not hostname:
            raise ValueError(f"invalid DSN {value!r}: missing host")
        prefix, _, project_id = path.rstrip("/").rpartition("/")
        if not project_id:
            raise ValueError(f"invalid DSN {value!r}: missing project id (last path segment)")
        if not (project_id.isascii() and project_id.isdigit()):
            raise ValueError(f"invalid DSN {value!r}: project id must be a number, not {project_id!r}")
        if query_or_fragment:
            raise ValueError(f"invalid DSN {value!r}: unexpected query or fragment")
        host = hostname
        if ":" in host:  # IPv6 literal: keep the brackets in URLs
            host = f"[{host}]"
        return cls(
            scheme=scheme,
            public_key=username,
            secret_key=password or None,
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


if TYPE_CHECKING:
    #: ``(scheme, public key, secret, host name, port, path, has a query or fragment)``, the
    #: user parts percent-decoded and the host name lower-cased, as ``urllib.parse`` gives them.
    _Parts = tuple[str, str | None, str | None, str | None, int | None, str, bool]

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HOST_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")
_PATH_CHARACTERS = _UNRESERVED | {"/"}


def _split_plain(text: str) -> _Parts | None:
    """The parts of a plain DSN, without importing ``urllib.parse``; ``None`` for anything else.

    Plain: a lower-case ``http``/``https`` scheme, a key (and secret) and path of unreserved
    characters, a host name of letters, digits, dots and dashes, an optional decimal port.
    For those, ``urllib.parse.urlsplit`` gives exactly these parts; whatever is not plain
    (percent escapes, IPv6, queries, stray characters, errors to report) goes through it.
    """
    scheme, separator, rest = text.partition("://")
    if not separator or scheme not in ("http", "https"):
        return None
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    hostname, _, port_text = hostport.partition(":")
    if (
        not (slash and at and username and hostname)
        or not _UNRESERVED.issuperset(userinfo.replace(":", "", 1))
        or not _HOST_CHARACTERS.issuperset(hostname)
        or not _PATH_CHARACTERS.issuperset(path)
    ):
        return None
    port: int | None = None
    if port_text:
        if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and int(port_text) <= 65535):
            return None
        port = int(port_text)
    return scheme, username, password or None, hostname.lower(), port, "/" + path, False


def _split_with_urllib(value: str, text: str) -> _Parts:
    """The parts of any DSN, by ``urllib.parse``; ``ValueError`` for a malformed URL or port."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid DSN {value!r}: {exc}") from None
    username = urllib.parse.unquote(parts.username) if parts.username else parts.username
    password = urllib.parse.unquote(parts.password) if parts.password else None
    return parts.scheme, username, password, parts.hostname, port, parts.path, bool(parts.query or parts.fragment)
