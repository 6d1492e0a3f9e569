"""What an HTTP request contributes to events: method, URL, query, headers, cookies, body, client IP.

Read from a WSGI ``environ`` or an ASGI connection scope, once, when the request starts, so
no reference to the environ (and what it holds) outlives the request. Everything is bounded
and decoded leniently: a hostile request (huge or undecodable headers, a query string that is
not UTF-8, missing keys) gives less data, never an exception.

Headers are filtered here, before any event is built: ``Authorization``,
``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``, ``X-Api-Key`` and every header the
SDK's event scrubber denies (which, with ``send_default_pii`` off, includes the IP headers
``X-Forwarded-For``, ``X-Real-IP``, ``Forwarded``...) have their value replaced by
``"[Filtered]"``. Cookies, the body and the client's IP address are read only with
``send_default_pii=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._framework import DEFAULT_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._lazy import LazyPattern
from ._options import Options
from ._scrubber import EventScrubber

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

__all__: list[str] = []

#: What a filtered header value is replaced with (the scrubber's marker).
FILTERED = "[Filtered]"
#: Header names whose values never leave the process, whatever the scrubber's lists say.
SENSITIVE_HEADERS = frozenset(("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"))
#: Bounds on what one request contributes; past them data is cut or left out.
MAX_HEADERS = 100
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 4096
MAX_PATH = 2048
MAX_QUERY = 4096
MAX_COOKIES = 64
MAX_TRANSACTION = 200

if TYPE_CHECKING:
    #: ``transaction_info.source`` values the middleware and ``set_transaction_name`` use.
    TransactionSource: TypeAlias = Literal["custom", "url", "route", "view", "component", "task"]
#: The values of ``TransactionSource``.
TRANSACTION_SOURCES = frozenset(("custom", "url", "route", "view", "component", "task"))

_METHOD = LazyPattern(r"[A-Z_-]{3,32}\Z")
_HOST = LazyPattern(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z")
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_TRACE_HEADERS = frozenset(("sentry-trace", "traceparent", "baggage"))
_FORM = "application/x-www-form-urlencoded"
_default_scrubbers: dict[bool, EventScrubber] = {}


class RequestData:
    """The request data of one request, as it goes into ``event["request"]`` (see :meth:`to_event`).

    ``headers`` are filtered already; ``cookies`` and ``client_ip`` are ``None`` unless
    ``send_default_pii`` is on. ``path`` (decoded, without the query) names the transaction
    when the framework gives no route.
    """

    _fields = (
        "method",
        "url",
        "path",
        "query_string",
        "headers",
        "cookies",
        "client_ip",
        "content_type",
        "content_length",
        "trace_headers",
    )
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __init__(
        self,
        method: str | None = None,
        url: str | None = None,
        path: str = "",
        query_string: str | None = None,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        client_ip: str | None = None,
        content_type: str = "",
        content_length: int | None = None,
        trace_headers: dict[str, str] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.path = path
        self.query_string = query_string
        self.headers: dict[str, str] = {} if headers is None else headers
        self.cookies = cookies
        self.client_ip = client_ip
        self.content_type = content_type
        self.content_length = content_length
        #: The incoming ``sentry-trace``, ``traceparent`` and ``baggage`` headers, unfiltered.
        self.trace_headers: dict[str, str] = {} if trace_headers is None else trace_headers

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self._values(), strict=True))
        return f"{type(self).__qualname__}({shown})"

    def to_event(self, body: object | None = None) -> dict[str, Any]:
        """A new ``request`` object for one event (``body`` is the parsed body, if any)."""
        request: dict[str, Any] = {}
        if self.method:
            request["method"] = self.method
        if self.url:
            request["url"] = self.url
        if self.query_string:
            request["query_string"] = self.query_string
        if self.headers:
            request["headers"] = dict(self.headers)
        if self.cookies:
            request["cookies"] = dict(self.cookies)
        if body is not None:
            request["data"] = body
        if self.client_ip:
            request["env"] = {"REMOTE_ADDR": self.client_ip}
        return request

    def wants_body(self, max_body_size: int) -> bool:
        """Whether the body is worth recording: a form or JSON body, not announced as too large."""
        if max_body_size <= 0 or self.content_length == 0:
            return False
        if self.content_length is not None and self.content_length > max_body_size:
            return False
        return _body_kind(self.content_type) is not None


def header_scrubber(options: Options) -> EventScrubber:
    """The scrubber deciding which headers to filter: the configured one, else the default one.

    The default is used even with ``event_scrubber=False``: turning off the scrubber must
    not make the middleware send credentials it would otherwise never read.
    """
    configured = options.event_scrubber
    if isinstance(configured, EventScrubber):
        return configured
    pii = options.send_default_pii
    scrubber = _default_scrubbers.get(pii)
    if scrubber is None:
        scrubber = _default_scrubbers[pii] = EventScrubber(send_default_pii=pii)
    return scrubber


def from_wsgi_environ(
    environ: Mapping[str, Any], *, options: Options, use_x_forwarded_for: bool = False
) -> RequestData:
    """The request data of a WSGI ``environ`` (PEP 3333: native strings hold latin-1 bytes)."""
    raw: list[tuple[str, str]] = []
    for key, value in environ.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key
        else:
            continue
        raw.append((_text(name).replace("_", "-"), _recode(value[: MAX_HEADER_VALUE * 4])))
        if len(raw) >= MAX_HEADERS:
            break
    scheme = _text(environ.get("wsgi.url_scheme")).lower()
    scheme = scheme if scheme in ("http", "https") else "http"
    path = _recode(_text(environ.get("SCRIPT_NAME"))) + _recode(_text(environ.get("PATH_INFO")))
    server = (_text(environ.get("SERVER_NAME")), _port(environ.get("SERVER_PORT")))
    remote = _text(environ.get("REMOTE_ADDR")) or None
    query = _recode(_text(environ.get("QUERY_STRING")))
    return _build(
        raw,
        scheme=scheme,
        path=path,
        query=query,
        method=_text(environ.get("REQUEST_METHOD")),
        server=server,
        remote=remote,
        options=options,
        use_x_forwarded_for=use_x_forwarded_for,
    )


def from_asgi_scope(scope: Mapping[str, Any], *, options: Options, use_x_forwarded_for: bool = False) -> RequestData:
    """The request data of an ASGI ``http`` or ``websocket`` connection scope."""
    raw: list[tuple[str, str]] = []
    headers = scope.get("headers")
    if isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
        for pair in headers:
            if len(raw) >= MAX_HEADERS:
                break
            if isinstance(pair, (tuple, list)) and len(pair) == 2:
                name, value = pair
                if isinstance(name, (bytes, bytearray)) and isinstance(value, (bytes, bytearray)):
                    raw.append((_decode(bytes(name[:MAX_HEADER_NAME])), _decode(bytes(value[: MAX_HEADER_VALUE * 4]))))
    kind = scope.get("type")
    default_scheme = "ws" if kind == "websocket" else "http"
    scheme = _text(scope.get("scheme")).lower() or default_scheme
    if scheme not in _DEFAULT_PORTS:
        scheme = default_scheme
    root_path, path = _text(scope.get("root_path")), _text(scope.get("path"))
    # Servers differ on whether ``path`` already starts with ``root_path``.
    full_path = path if not root_path or path.startswith(root_path) else root_path + path
    query = scope.get("query_string")
    server = scope.get("server")
    host, port = "", ""
    if isinstance(server, (tuple, list)) and len(server) == 2:
        host, port = _text(server[0]), _port(server[1])
    client = scope.get("client")
    remote = _text(client[0]) if isinstance(client, (tuple, list)) and client else None
    return _build(
        raw,
        scheme=scheme,
        path=full_path,
        query=_decode(bytes(query[:MAX_QUERY])) if isinstance(query, (bytes, bytearray)) else "",
        method=_text(scope.get("method")) if kind == "http" else "",
        server=(host, port),
        remote=remote,
        options=options,
        use_x_forwarded_for=use_x_forwarded_for,
    )


def _build(
    raw: list[tuple[str, str]],
    *,
    scheme: str,
    path: str,
    query: str,
    method: str,
    server: tuple[str, str],
    remote: str | None,
    options: Options,
    use_x_forwarded_for: bool,
) -> RequestData:
    pii = options.send_default_pii
    by_name: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        if key in by_name:  # a repeated header: one value, as HTTP defines (cookies have their own separator)
            value = f"{by_name[key]}{'; ' if key == 'cookie' else ', '}{value}"
        by_name[key] = value
    data = RequestData()
    data.trace_headers = {name: value for name, value in by_name.items() if name in _TRACE_HEADERS}
    data.headers = filter_headers(by_name.items(), header_scrubber(options))
    data.method = method.upper() if _METHOD.match(method.upper()) else None
    data.path = _bounded(path, MAX_PATH) or "/"
    server_host = f"{server[0]}:{server[1]}" if server[1] else server[0]
    host = _host(by_name.get("host", ""), scheme) or _host(server_host, scheme)
    from urllib.parse import quote  # imported by the first request, not by init

    quoted = quote(data.path, safe=_PATH_SAFE)
    data.url = f"{scheme}://{host}{quoted}" if host else quoted
    data.query_string = _bounded(query, MAX_QUERY) or None
    data.content_type = by_name.get("content-type", "")
    length = by_name.get("content-length", "").strip()
    data.content_length = int(length) if length.isdigit() and len(length) < 19 else None
    if pii:
        cookie = by_name.get("cookie")
        data.cookies = parse_cookies(cookie) if cookie else None
        forwarded = by_name.get("x-forwarded-for", "") if use_x_forwarded_for else ""
        data.client_ip = client_ip(remote, forwarded)
    return data


def filter_headers(headers: Iterable[tuple[str, str]], scrubber: EventScrubber) -> dict[str, str]:
    """``{Title-Case-Name: value}`` with sensitive values replaced by ``"[Filtered]"``."""
    filtered: dict[str, str] = {}
    for name, value in headers:
        title = _bounded(name, MAX_HEADER_NAME).title()
        if name.lower() in SENSITIVE_HEADERS or scrubber.is_denied(name):
            filtered[title] = FILTERED if value else value
        else:
            filtered[title] = _bounded(value, MAX_HEADER_VALUE)
    return filtered


def parse_cookies(header: str) -> dict[str, str]:
    """``{name: value}`` of a ``Cookie`` header, leniently (at most ``MAX_COOKIES``)."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name:
            cookies[_bounded(name, MAX_HEADER_NAME)] = _bounded(value.strip(), MAX_HEADER_VALUE)
            if len(cookies) >= MAX_COOKIES:
                break
    return cookies


def client_ip(remote: str | None, forwarded_for: str = "") -> str | None:
    """The client's address: the first valid ``X-Forwarded-For`` entry if given, else ``remote``."""
    import ipaddress

    for candidate in (forwarded_for.split(",")[0].strip(), (remote or "").strip()):
        if candidate and len(candidate) <= 64:
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            return candidate
    return None


class BodyRecorder:
    """Keeps a copy of a request body as the application reads it, up to ``limit`` bytes.

    :meth:`body` is the parsed body once the whole of it was read and it fit; ``None``
    otherwise (not read yet, read partly, too large, or neither a form nor JSON).
    """

    __slots__ = ("_chunks", "_content_type", "_expected", "_limit", "_size", "complete", "too_large")

    def __init__(self, limit: int, content_type: str, expected_length: int | None) -> None:
        self._limit = limit
        self._content_type = content_type
        self._expected = expected_length
        self._chunks: list[bytes] = []
        self._size = 0
        #: Whether the end of the body was seen.
        self.complete = expected_length == 0
        #: Whether the body went past the limit (and nothing more is kept).
        self.too_large = False

    def add(self, chunk: bytes, *, end: bool = False) -> None:
        """Record ``chunk``; ``end`` says it was the last one."""
        self._size += len(chunk)
        if self._size > self._limit:
            self.too_large = True
            self._chunks.clear()
        elif chunk:
            self._chunks.append(bytes(chunk))
        if end or (self._expected is not None and self._size >= self._expected):
            self.complete = True

    def body(self) -> object | None:
        """The parsed body (a dict for a form, any JSON value for JSON), or ``None``."""
        if not self.complete or self.too_large:
            return None
        return parse_body(b"".join(self._chunks), self._content_type)


def parse_body(body: bytes, content_type: str) -> object | None:
    """A form body as ``{name: value or [values]}``, a JSON body as its value; ``None`` otherwise."""
    kind = _body_kind(content_type)
    if kind is None or not body:
        return None
    try:
        text = body.decode("utf-8")
        if kind == "json":
            import json

            value: object = json.loads(text)
            return value
        from urllib.parse import parse_qsl

        form: dict[str, Any] = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            previous = form.get(name)
            if previous is None:
                form[name] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                form[name] = [previous, value]
        return form
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def transaction_from_path(path: str) -> str:
    """The transaction name for a URL path: the path itself, bounded."""
    return _bounded(path, MAX_TRANSACTION) or "/"


def _body_kind(content_type: str) -> Literal["json", "form"] | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    if media == _FORM:
        return "form"
    return None


def _host(value: str, scheme: str) -> str:
    """``value`` as the URL's host (default port removed) when it looks like a host; ``""`` otherwise."""
    value = value.strip()
    if not value or len(value) > 255 or not _HOST.match(value):
        return ""
    host, sep, port = value.rpartition(":")
    if sep and not host.endswith(":") and port == _DEFAULT_PORTS.get(scheme) and not value.endswith("]"):
        return host
    return value


def _text(value: object) -> str:
    """``value`` if it is a string (lone surrogates replaced, so that it can be encoded), else ``""``."""
    if not isinstance(value, str):
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _port(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return str(value)
    return _text(value) if _text(value).isdigit() else ""


def _recode(value: str) -> str:
    """A WSGI native string (latin-1 code points standing for bytes) as the UTF-8 text it encodes."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a server that already decoded it
        return _text(value)


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
