"""The inbox pages against hostile requests: wrong methods, oversized forms, cross-site sign-outs, made-up files."""

from __future__ import annotations

import json
import urllib.parse

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_feedback.server import LocalReceiver
from sentry_feedback.server._inbox import _MAX_FORM

from .test_inbox_http import PAGES, cookie_header, get, http, server, session

#: Property tests over a served fixture: a fixed set of examples (the fixture is shared by them on purpose).
FIXED_EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

__all__ = ["http", "server"]  # the inbox tests' fixtures: a signed-in-able server and an HTTP client

SIGN_IN = "/inbox/sign-in"
SIGN_OUT = "/inbox/sign-out"


def detail(reply: urllib3.BaseHTTPResponse) -> str:
    assert reply.headers["Content-Type"] == "application/json"
    return str(json.loads(reply.data)["detail"])


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/", "GET, HEAD"),
        ("PUT", "/", "GET, HEAD"),
        ("DELETE", "/", "GET, HEAD"),
        ("GET", SIGN_IN, "POST"),
        ("PUT", SIGN_IN, "POST"),
        ("GET", SIGN_OUT, "POST"),
        ("DELETE", SIGN_OUT, "POST"),
    ],
)
def test_a_wrong_method_is_a_405_that_signs_nobody_in_or_out(
    server: LocalReceiver, http: urllib3.PoolManager, method: str, path: str, allow: str
) -> None:
    # A valid token in the query and the form, a same-origin request: still nothing but a 405.
    token = urllib.parse.quote(server.api_token)
    reply = http.request(
        method,
        f"{server.url}{path}?token={token}",
        body=f"token={token}&next=/",
        headers={"Origin": server.url, "Content-Type": "application/x-www-form-urlencoded"},
        redirect=False,
    )
    assert reply.status == 405
    assert reply.headers["Allow"] == allow
    assert detail(reply) == f"method {method} not allowed"
    assert "Set-Cookie" not in reply.headers


def test_a_head_request_for_a_form_endpoint_is_a_405_without_a_body(
    server: LocalReceiver, http: urllib3.PoolManager
) -> None:
    for path in (SIGN_IN, SIGN_OUT):
        reply = http.request("HEAD", server.url + path, redirect=False)
        assert (reply.status, reply.headers["Allow"], reply.data) == (405, "POST", b"")
        assert int(reply.headers["Content-Length"]) == len(json.dumps({"detail": "method HEAD not allowed"}))


def _form(token: str, size: int) -> bytes:
    """A sign-in form of exactly ``size`` bytes holding ``token``."""
    head = f"token={urllib.parse.quote(token)}&next=%2F%3Fstatus%3Dresolved&padding="
    assert len(head) <= size
    return (head + "x" * (size - len(head))).encode()


def test_a_sign_in_form_larger_than_the_limit_is_a_413(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    def sign_in(body: bytes) -> urllib3.BaseHTTPResponse:
        headers = {"Origin": server.url, "Content-Type": "application/x-www-form-urlencoded"}
        return http.request("POST", server.url + SIGN_IN, body=body, headers=headers, redirect=False)

    largest = sign_in(_form(server.api_token, _MAX_FORM))
    assert (largest.status, largest.headers["Location"]) == (303, "/?status=resolved")
    assert len(largest.headers.getlist("Set-Cookie")) == 2

    too_large = sign_in(_form(server.api_token, _MAX_FORM + 1))
    assert too_large.status == 413
    assert detail(too_large) == "the form is too large"
    assert "Set-Cookie" not in too_large.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.test"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1"},  # this host, another port: another origin
    ],
    ids=["other-site", "opaque-cross-site", "opaque-unknown", "other-port"],
)
def test_a_sign_out_from_another_site_is_a_403_and_the_session_stays(
    server: LocalReceiver, http: urllib3.PoolManager, headers: dict[str, str]
) -> None:
    cookies = session(http, server, server.api_token)
    signed_in = {"Cookie": cookie_header(cookies)}
    reply = http.request("POST", server.url + SIGN_OUT, headers={**signed_in, **headers}, redirect=False)
    assert reply.status == 403
    assert detail(reply) == "sign-out from another site"
    assert "Set-Cookie" not in reply.headers
    # The session still opens the inbox.
    assert get(http, server.url + "/", headers=signed_in).data == PAGES.joinpath("index.html").read_bytes()


def test_a_missing_static_file_is_a_404(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    # Modules next to the inbox folder are not in it: only the page's own files are served.
    for name in ("missing.js", "__init__.py", "_app.py", "inbox", "index.htm"):
        reply = get(http, f"{server.url}/inbox/static/{name}")
        assert reply.status == 404, name
        assert detail(reply) == f"no such file: {name}"
        assert "Set-Cookie" not in reply.headers
    head = http.request("HEAD", f"{server.url}/inbox/static/missing.js")
    assert (head.status, head.data) == (404, b"")


FILES = {path.name for path in PAGES.iterdir() if path.is_file()}


@FIXED_EXAMPLES
@given(
    name=st.one_of(
        st.sampled_from(sorted(FILES)),
        st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,30}", fullmatch=True),
    )
)
def test_a_static_name_serves_exactly_that_inbox_file_or_a_404(
    server: LocalReceiver, http: urllib3.PoolManager, name: str
) -> None:
    reply = get(http, f"{server.url}/inbox/static/{name}")
    if name in FILES:
        assert (reply.status, reply.data) == (200, PAGES.joinpath(name).read_bytes())
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
    else:
        assert (reply.status, detail(reply)) == (404, f"no such file: {name}")


def _sign_in_next(server: LocalReceiver, http: urllib3.PoolManager, target: str) -> urllib3.BaseHTTPResponse:
    body = urllib.parse.urlencode({"token": server.api_token, "next": target})
    headers = {"Origin": server.url, "Content-Type": "application/x-www-form-urlencoded"}
    return http.request("POST", server.url + SIGN_IN, body=body, headers=headers, redirect=False)


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/?query=status%3Aresolved", "/?query=status%3Aresolved"),
        ("/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9"),
        ("/\u0100", "/"),
        ("/\u2028javascript:x", "/"),
        ("/caf\u00e9", "/"),
        ("/\x7f", "/"),
        ("/\x00", "/"),
        ("/\t/evil.test", "/"),
    ],
    ids=["query", "percent-encoded", "past-latin-1", "line-separator", "latin-1", "delete", "nul", "tab"],
)
def test_a_sign_in_goes_back_only_to_a_plain_path_of_this_server(
    server: LocalReceiver, http: urllib3.PoolManager, target: str, location: str
) -> None:
    reply = _sign_in_next(server, http, target)
    assert (reply.status, reply.headers["Location"]) == (303, location)
    assert len(reply.headers.getlist("Set-Cookie")) == 2


@FIXED_EXAMPLES
@given(target=st.one_of(st.text(max_size=20).map(lambda text: "/" + text), st.text(max_size=20)))
def test_any_next_target_is_answered_with_a_redirect_to_this_server(
    server: LocalReceiver, http: urllib3.PoolManager, target: str
) -> None:
    """Whatever ``next`` holds, the answer is a redirect to it or to ``/``, never to another site or no answer."""
    target = target.encode("utf-8", "replace").decode("utf-8")  # a form carries UTF-8 text
    reply = _sign_in_next(server, http, target)
    assert reply.status == 303
    location = reply.headers["Location"]
    assert location in (target, "/")
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location
    assert location.isascii() and location.isprintable()
