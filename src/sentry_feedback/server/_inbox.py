"""The feedback inbox: a page in the browser, served from files inside the package, built on the REST API only.

Routes:

- ``GET /``: the inbox (``inbox/index.html``) with a valid session, else the sign-in form
  (``inbox/sign-in.html``). ``GET /?token=...`` signs in with a token handed over in the URL
  (``sentry-feedback serve`` prints such a link) and redirects to the same URL without it.
- ``POST /inbox/sign-in`` (a form with ``token`` and an optional ``next`` path) and
  ``POST /inbox/sign-out``.
- ``GET /inbox/static/<file>``: the page's script, style sheet and icon.

A session is the API token in the ``sf_session`` cookie (``HttpOnly``, ``SameSite=Strict``), with
a random ``sf_csrf`` cookie the page sends back in ``X-CSRF-Token`` on changes (see ``_auth``).
Every page goes out with a strict ``Content-Security-Policy``: scripts, styles, images and
requests from this server only, nothing inline, no framing.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from importlib import resources
from typing import TYPE_CHECKING

from ._auth import CSRF_COOKIE, SESSION_COOKIE, cookies
from ._http import Answer

if TYPE_CHECKING:
    from ._app import FeedbackApp, Request

__all__ = ["CONTENT_SECURITY_POLICY", "handle", "session_token"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer, a browser sends "Origin: null" on the page's own form posts.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
_STATIC = re.compile(r"/inbox/static/([A-Za-z0-9_-][A-Za-z0-9_.-]{0,100})")
_MAX_FORM = 64 * 1024
_SIGN_IN_FAILED = "/?sign-in=failed"
#: Printable ASCII: what a header value may hold.
_PLAIN = re.compile(r"[\x20-\x7e]*")


def handle(app: FeedbackApp, request: Request) -> Answer:
    """Answer a request for ``/`` or ``/inbox/...``."""
    path = request.path
    if path == "/":
        return _page(app, request)
    if path == "/inbox/sign-in":
        return _sign_in(app, request)
    if path == "/inbox/sign-out":
        return _sign_out(app, request)
    match = _STATIC.fullmatch(path)
    if match is not None and request.method in ("GET", "HEAD"):
        request.body()
        return _static(match.group(1))
    request.body()
    return Answer.error(404, f"no such page: {request.method} {path}")


def session_token(app: FeedbackApp, request: Request) -> str | None:
    """The API token of the request's session cookie, when it is a token of the server."""
    value = cookies(request.headers).get(SESSION_COOKIE)
    if not value:
        return None
    token = urllib.parse.unquote(value)
    return token if app.config.token(token) is not None else None


# -- pages -------------------------------------------------------------------------------


def _page(app: FeedbackApp, request: Request) -> Answer:
    if request.method not in ("GET", "HEAD"):
        request.body()
        return Answer.error(405, f"method {request.method} not allowed", {"Allow": "GET, HEAD"})
    request.body()
    query = urllib.parse.parse_qsl(request.query_string, keep_blank_values=True)
    handed = [value for name, value in query if name == "token"]
    if handed:  # a token handed over in the URL: keep it in the cookies, never in the address bar
        token = handed[-1]
        if app.config.token(token) is None:
            return _redirect(_SIGN_IN_FAILED)
        rest = urllib.parse.urlencode([(name, value) for name, value in query if name != "token"])
        return _redirect("/" + (f"?{rest}" if rest else ""), _session_cookies(request, token))
    if session_token(app, request) is None:
        return _static("sign-in.html")
    return _static("index.html")


def _sign_in(app: FeedbackApp, request: Request) -> Answer:
    if request.method != "POST":
        request.body()
        return Answer.error(405, f"method {request.method} not allowed", {"Allow": "POST"})
    if not _same_origin(request):
        return Answer.error(403, "sign-in from another site")
    body = request.body()
    if len(body) > _MAX_FORM:
        return Answer.error(413, "the form is too large")
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    token = (form.get("token") or [""])[0].strip()
    target = (form.get("next") or ["/"])[0]
    # A path of this server, as a Location header can carry it: the page sends it percent-encoded (printable ASCII).
    if not target.startswith("/") or target.startswith("//") or "\\" in target or not _PLAIN.fullmatch(target):
        target = "/"
    if not token or app.config.token(token) is None:
        return _redirect(_SIGN_IN_FAILED)
    return _redirect(target, _session_cookies(request, token))


def _sign_out(app: FeedbackApp, request: Request) -> Answer:
    if request.method != "POST":
        request.body()
        return Answer.error(405, f"method {request.method} not allowed", {"Allow": "POST"})
    request.body()
    if not _same_origin(request):
        return Answer.error(403, "sign-out from another site")
    secure = "; Secure" if request.scheme == "https" else ""
    gone = tuple(
        f"{name}=; Max-Age=0; Path=/; SameSite=Strict{secure}{'; HttpOnly' if name == SESSION_COOKIE else ''}"
        for name in (SESSION_COOKIE, CSRF_COOKIE)
    )
    return _redirect("/", gone)


def _static(name: str) -> Answer:
    suffix = name[name.rfind(".") :] if "." in name else ""
    try:
        data = resources.files(__package__).joinpath("inbox").joinpath(name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return Answer.error(404, f"no such file: {name}")
    headers = dict(_PAGE_HEADERS)
    headers["Content-Type"] = _TYPES.get(suffix, "application/octet-stream")
    if not name.endswith(".html"):
        headers["Cache-Control"] = "no-cache"
    return Answer(200, data, headers)


# -- helpers -----------------------------------------------------------------------------


def _redirect(location: str, cookies: tuple[str, ...] = ()) -> Answer:
    return Answer(
        303, b"", {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}, cookies
    )


def _session_cookies(request: Request, token: str) -> tuple[str, ...]:
    secure = "; Secure" if request.scheme == "https" else ""
    value = urllib.parse.quote(token, safe="")
    csrf = secrets.token_urlsafe(32)
    return (
        f"{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}",
        f"{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict{secure}",
    )


def _same_origin(request: Request) -> bool:
    """A form post from this server's own page (browsers send ``Origin`` on POST; tools may not)."""
    origin = request.headers.get("Origin")
    if origin == "null":  # an opaque origin: trust the browser's own word that the post is same-origin
        return request.headers.get("Sec-Fetch-Site") == "same-origin"
    return origin is None or origin == request.base_url
