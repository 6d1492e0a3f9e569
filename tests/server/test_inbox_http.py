"""The inbox's server side over real HTTP: pages, sign-in, the session cookie, CSRF, and the endpoints the page uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.cookies import SimpleCookie
from importlib import resources

import pytest
import urllib3

from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.server import LocalReceiver

READ_TOKEN = "read-only-token-1"
PAGES = resources.files("sentry_feedback.server").joinpath("inbox")


@pytest.fixture
def server() -> Iterator[LocalReceiver]:
    with LocalReceiver(api_token="write-token-1", read_token=READ_TOKEN) as receiver:
        event = {"environment": "production", "contexts": {"feedback": {"message": "hello"}}}
        item = EnvelopeItem.from_json("feedback", event)
        receiver.store.store_envelope("1", Envelope({"event_id": "a" * 32}, [item]), 1)
        yield receiver


@pytest.fixture
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False)


def get(http: urllib3.PoolManager, url: str, **kwargs: object) -> urllib3.BaseHTTPResponse:
    return http.request("GET", url, redirect=False, **kwargs)  # type: ignore[arg-type]


def session(http: urllib3.PoolManager, server: LocalReceiver, token: str) -> dict[str, str]:
    """Sign in by handing the token over in the URL; the cookies the server set."""
    reply = get(http, f"{server.url}/?token={token}&query=status%3Aunresolved")
    assert reply.status == 303 and reply.headers["Location"] == "/?query=status%3Aunresolved"
    jar: SimpleCookie = SimpleCookie()
    for header in reply.headers.getlist("Set-Cookie"):
        jar.load(header)
    session, csrf = jar["sf_session"], jar["sf_csrf"]
    assert (session["httponly"], session["samesite"], session["path"]) == (True, "Strict", "/")
    assert (csrf["httponly"], csrf["samesite"]) == ("", "Strict")  # the page reads it
    return {"sf_session": session.value, "sf_csrf": csrf.value}


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def test_pages_are_served_with_a_strict_policy(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    signed_out = get(http, server.url + "/")
    assert signed_out.status == 200
    assert signed_out.data == PAGES.joinpath("sign-in.html").read_bytes()
    policy = signed_out.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert signed_out.headers["X-Content-Type-Options"] == "nosniff"
    assert signed_out.headers["Content-Type"] == "text/html; charset=utf-8"

    cookies = session(http, server, server.api_token)
    signed_in = get(http, server.url + "/?query=x", headers={"Cookie": cookie_header(cookies)})
    assert signed_in.data == PAGES.joinpath("index.html").read_bytes()

    script = get(http, server.url + "/inbox/static/inbox.js")
    assert (script.status, script.headers["Content-Type"]) == (200, "text/javascript; charset=utf-8")
    for bad in ("/inbox/static/../_app.py", "/inbox/static/.hidden", "/inbox/static/%2e%2e%2f_app.py", "/inbox/x"):
        assert get(http, server.url + bad).status == 404, bad


def test_a_bad_token_signs_nobody_in(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    reply = get(http, f"{server.url}/?token=not-a-token")
    assert (reply.status, reply.headers["Location"]) == (303, "/?sign-in=failed")
    assert "Set-Cookie" not in reply.headers
    forged = {"Cookie": "sf_session=not-a-token; sf_csrf=x"}
    assert get(http, server.url + "/", headers=forged).data == PAGES.joinpath("sign-in.html").read_bytes()
    listing = get(http, f"{server.api_url}/organizations/local/user-feedback/", headers=forged)
    assert listing.status == 401


def test_the_sign_in_form(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    url = server.url + "/inbox/sign-in"
    origin = {"Origin": server.url}
    for target, expected in (("/?status=resolved", "/?status=resolved"), ("//evil.test/", "/"), ("https://x", "/")):
        reply = http.request(
            "POST", url, fields={"token": server.api_token, "next": target}, encode_multipart=False,
            headers=origin, redirect=False,
        )  # fmt: skip
        assert (reply.status, reply.headers["Location"]) == (303, expected)
        assert len(reply.headers.getlist("Set-Cookie")) == 2
    wrong = http.request("POST", url, fields={"token": "nope"}, encode_multipart=False, headers=origin, redirect=False)
    assert (wrong.status, wrong.headers["Location"]) == (303, "/?sign-in=failed")
    cross = http.request(
        "POST", url, fields={"token": server.api_token}, encode_multipart=False,
        headers={"Origin": "http://evil.test"}, redirect=False,
    )  # fmt: skip
    assert cross.status == 403 and "Set-Cookie" not in cross.headers
    out = http.request("POST", server.url + "/inbox/sign-out", headers=origin, redirect=False)
    assert out.status == 303
    assert all("Max-Age=0" in header for header in out.headers.getlist("Set-Cookie"))


def test_changes_through_the_cookie_need_the_csrf_token(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    cookies = session(http, server, server.api_token)
    item = f"{server.api_url}/projects/local/default/user-feedback/{'a' * 32}/"
    body = json.dumps({"data": {"status": "resolved"}})
    base = {"Cookie": cookie_header(cookies), "Content-Type": "application/json"}
    assert get(http, item, headers=base).status == 200  # reading needs no CSRF token
    for extra in ({}, {"X-CSRF-Token": "guess"}, {"X-CSRF-Token": cookies["sf_csrf"], "Origin": "http://evil.test"}):
        reply = http.request("PATCH", item, body=body, headers={**base, **extra})
        assert reply.status == 403 and "CSRF" in json.loads(reply.data)["detail"], extra
    assert server.store.get_feedback("a" * 32).status == "unresolved"  # type: ignore[union-attr]
    good = {**base, "X-CSRF-Token": cookies["sf_csrf"], "Origin": server.url}
    assert http.request("PATCH", item, body=body, headers=good).status == 202
    assert server.store.get_feedback("a" * 32).status == "resolved"  # type: ignore[union-attr]
    # A Bearer header needs no CSRF token: no browser sends one by itself.
    bearer = {"Authorization": f"Bearer {server.api_token}", "Content-Type": "application/json"}
    assert http.request("PATCH", item, body=body, headers=bearer).status == 202


def test_a_read_only_session_reads_but_changes_nothing(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    cookies = session(http, server, READ_TOKEN)
    headers = {"Cookie": cookie_header(cookies), "X-CSRF-Token": cookies["sf_csrf"], "Origin": server.url}
    assert get(http, f"{server.api_url}/organizations/local/user-feedback/", headers=headers).status == 200
    reply = http.request(
        "DELETE", f"{server.api_url}/projects/local/default/user-feedback/{'a' * 32}/", headers=headers
    )
    assert reply.status == 403 and "permission" in json.loads(reply.data)["detail"]


def test_the_endpoints_the_page_uses(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    headers = {"Authorization": f"Bearer {server.api_token}"}

    def data(path: str) -> object:
        reply = get(http, server.api_url + path, headers=headers)
        assert reply.status == 200, (path, reply.data)
        return json.loads(reply.data)

    assert data("/organizations/") == [{"id": "1", "slug": "local", "name": "local"}]
    assert data("/organizations/local/projects/") == [{"id": "1", "slug": "default", "name": "default"}]
    assert data("/organizations/local/environments/") == [{"id": "1", "name": "production"}]
    (key,) = data("/projects/local/default/keys/")  # type: ignore[misc]
    assert key["dsn"]["public"] == server.dsn and key["public"] == "public"
    assert get(http, server.api_url + "/projects/local/nope/keys/", headers=headers).status == 404
    assert get(http, server.api_url + "/organizations/").status == 401


def test_behind_a_reverse_proxy_on_the_same_host(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    """A proxy terminating TLS on this host says so in X-Forwarded-Proto/-Host: Secure cookies, its origin."""
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "feedback.example.com"}
    reply = get(http, f"{server.url}/?token={server.api_token}", headers=proxied)
    cookies = reply.headers.getlist("Set-Cookie")
    assert len(cookies) == 2 and all("; Secure" in cookie for cookie in cookies)
    jar: SimpleCookie = SimpleCookie()
    for header in cookies:
        jar.load(header)
    item = f"{server.api_url}/projects/local/default/user-feedback/{'a' * 32}/"
    headers = {
        **proxied,
        "Cookie": f"sf_session={jar['sf_session'].value}; sf_csrf={jar['sf_csrf'].value}",
        "X-CSRF-Token": jar["sf_csrf"].value,
        "Content-Type": "application/json",
    }
    body = json.dumps({"data": {"status": "resolved"}})
    assert (
        http.request("PATCH", item, body=body, headers={**headers, "Origin": "https://feedback.example.com"}).status
        == 202
    )
    assert http.request("PATCH", item, body=body, headers={**headers, "Origin": server.url}).status == 403
    keys = get(
        http,
        f"{server.api_url}/projects/local/default/keys/",
        headers={**proxied, "Authorization": f"Bearer {server.api_token}"},
    )
    assert json.loads(keys.data)[0]["dsn"]["public"] == "https://public@feedback.example.com/1"


def test_a_form_post_with_an_opaque_origin_needs_the_browsers_word(
    server: LocalReceiver, http: urllib3.PoolManager
) -> None:
    """A browser may send ``Origin: null`` on a page's own form posts; ``Sec-Fetch-Site`` then says where from."""
    url = server.url + "/inbox/sign-in"
    for site, expected in (("same-origin", 303), ("cross-site", 403), (None, 403)):
        headers = {"Origin": "null", **({"Sec-Fetch-Site": site} if site else {})}
        reply = http.request(
            "POST", url, fields={"token": server.api_token}, encode_multipart=False, headers=headers, redirect=False
        )
        assert reply.status == expected, site
