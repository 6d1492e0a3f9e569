"""The HTTP transport's TLS, client certificates, proxies and TCP keep-alive, over real sockets on 127.0.0.1.

A CA made by ``trustme`` signs the receiver's certificate (for ``127.0.0.1``), and
``tests/proxy_server.py`` is a real forwarding proxy (CONNECT tunnels and absolute-URI
forwarding). Every failing send is tried once (``RetryPolicy(max_attempts=1)``), so a
failure is counted at once and ``flush`` does not wait for retries.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

import sentry_feedback as sf
from forking import send_from_forked_child
from proxy_server import ProxyServer
from sentry_feedback._options import RetryPolicy
from sentry_feedback._transport import HttpTransport, _bypasses_proxy
from sentry_feedback.server import LocalReceiver

Receiver = Callable[..., LocalReceiver]

_ENV = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CA bundle or proxy from the machine running the tests: each test sets what it needs."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_pem(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def wrong_ca_pem(tmp_path: Path) -> str:
    """A valid CA bundle, but of another CA than the one that signed the receiver's certificate."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, *, require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


@pytest.fixture
def make_receiver() -> Iterator[Receiver]:
    started: list[LocalReceiver] = []

    def make(ssl_context: ssl.SSLContext | None = None) -> LocalReceiver:
        receiver = LocalReceiver(ssl_context=ssl_context).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def https_receiver(make_receiver: Receiver, ca: trustme.CA) -> LocalReceiver:
    return make_receiver(server_context(ca))


@pytest.fixture
def http_receiver(make_receiver: Receiver) -> LocalReceiver:
    return make_receiver()


@pytest.fixture
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer() as server:
        yield server


def init(dsn: str, **options: Any) -> sf.Client:
    """``sf.init`` with one attempt per envelope and a short timeout."""
    options.setdefault("retry", RetryPolicy(max_attempts=1))
    options.setdefault("http_timeout", 5)
    return sf.init(dsn, **options)


def send_one(receiver: LocalReceiver, message: str = "hello over the wire") -> str | None:
    """Capture one feedback, flush, and return the message the receiver stored (None: nothing arrived)."""
    assert sf.capture_feedback(message) is not None
    assert sf.flush(5)
    stored = receiver.store.list_feedback()
    assert len(stored) <= 1
    return stored[0].message if stored else None


def transport(client: sf.Client) -> HttpTransport:
    assert isinstance(client.transport, HttpTransport)
    return client.transport


NETWORK_ERROR = {("network_error", "feedback"): 1}


# -- the receiver over HTTPS ----------------------------------------------------------------------


def test_https_receiver_urls(https_receiver: LocalReceiver) -> None:
    assert https_receiver.url == f"https://127.0.0.1:{https_receiver.port}"
    assert https_receiver.dsn == f"https://public@127.0.0.1:{https_receiver.port}/1"
    assert https_receiver.envelope_url.startswith("https://")


# -- CA bundle --------------------------------------------------------------------------------------


def test_feedback_delivered_over_https_with_ca_certs(https_receiver: LocalReceiver, ca_pem: str) -> None:
    client = init(https_receiver.dsn, ca_certs=ca_pem)
    assert send_one(https_receiver) == "hello over the wire"
    assert client.client_reports.totals() == {}
    assert https_receiver.received[0].headers["Content-Encoding"] == "gzip"


def test_untrusted_certificate_is_a_network_error(
    https_receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """With certifi's bundle only, the test CA is unknown: the send fails, it is never sent unverified."""
    client = init(https_receiver.dsn)
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        assert send_one(https_receiver) is None
    assert client.client_reports.totals() == NETWORK_ERROR
    assert https_receiver.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    with pytest.raises(sf.NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
        sf.send_feedback("blocking", timeout=5)


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_ca_bundle_from_the_environment(
    https_receiver: LocalReceiver, ca_pem: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, ca_pem)
    client = init(https_receiver.dsn)
    assert send_one(https_receiver) == "hello over the wire"
    assert client.client_reports.totals() == {}


@pytest.mark.parametrize(
    ("ca_certs", "ssl_cert_file", "requests_ca_bundle", "delivered"),
    [
        ("good", "wrong", "wrong", True),
        ("wrong", "good", "good", False),
        (None, "good", "wrong", True),
        (None, "wrong", "good", False),
        (None, None, "wrong", False),
    ],
)
def test_ca_bundle_order_ca_certs_then_ssl_cert_file_then_requests_ca_bundle(
    https_receiver: LocalReceiver,
    ca_pem: str,
    wrong_ca_pem: str,
    monkeypatch: pytest.MonkeyPatch,
    ca_certs: str | None,
    ssl_cert_file: str | None,
    requests_ca_bundle: str | None,
    delivered: bool,
) -> None:
    paths = {"good": ca_pem, "wrong": wrong_ca_pem, None: None}
    for variable, which in (("SSL_CERT_FILE", ssl_cert_file), ("REQUESTS_CA_BUNDLE", requests_ca_bundle)):
        if which is not None:
            monkeypatch.setenv(variable, paths[which])  # type: ignore[arg-type]
    client = init(https_receiver.dsn, ca_certs=paths[ca_certs])
    assert (send_one(https_receiver) is not None) is delivered
    assert client.client_reports.totals() == ({} if delivered else NETWORK_ERROR)


# -- client certificates ----------------------------------------------------------------------------


@pytest.fixture
def mtls_receiver(make_receiver: Receiver, ca: trustme.CA) -> LocalReceiver:
    return make_receiver(server_context(ca, require_client_cert=True))


@pytest.mark.parametrize("key_in_cert_file", [True, False])
def test_client_certificate(
    mtls_receiver: LocalReceiver, ca: trustme.CA, ca_pem: str, tmp_path: Path, key_in_cert_file: bool
) -> None:
    leaf = ca.issue_cert("sdk-client.example.com")
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    if key_in_cert_file:
        leaf.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
        options = {"cert_file": str(cert_file)}
    else:
        cert_file.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key_file))
        options = {"cert_file": str(cert_file), "key_file": str(key_file)}
    client = init(mtls_receiver.dsn, ca_certs=ca_pem, **options)
    assert send_one(mtls_receiver) == "hello over the wire"
    assert client.client_reports.totals() == {}


def test_without_the_client_certificate_the_send_fails(mtls_receiver: LocalReceiver, ca_pem: str) -> None:
    client = init(mtls_receiver.dsn, ca_certs=ca_pem)
    assert send_one(mtls_receiver) is None
    assert client.client_reports.totals() == NETWORK_ERROR
    assert mtls_receiver.received == []


def test_client_certificate_of_another_ca_is_refused(mtls_receiver: LocalReceiver, ca_pem: str, tmp_path: Path) -> None:
    cert_file = tmp_path / "stranger.pem"
    trustme.CA().issue_cert("sdk-client.example.com").private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    client = init(mtls_receiver.dsn, ca_certs=ca_pem, cert_file=str(cert_file))
    assert send_one(mtls_receiver) is None
    assert client.client_reports.totals() == NETWORK_ERROR


# -- proxies -----------------------------------------------------------------------------------------


def test_http_dsn_through_http_proxy_option(http_receiver: LocalReceiver, proxy: ProxyServer) -> None:
    client = init(http_receiver.dsn, http_proxy=proxy.url())
    assert transport(client).proxy == proxy.url()
    assert send_one(http_receiver) == "hello over the wire"
    assert proxy.forwarded == [f"POST {http_receiver.envelope_url}"]
    assert proxy.tunnels == []
    # The receiver saw the SDK's own headers, forwarded.
    assert "sentry_key=public" in http_receiver.received[0].headers["X-Sentry-Auth"]


def test_https_dsn_tunnels_through_https_proxy_option(
    https_receiver: LocalReceiver, proxy: ProxyServer, ca_pem: str
) -> None:
    client = init(https_receiver.dsn, ca_certs=ca_pem, https_proxy=proxy.url(), http_proxy="http://127.0.0.1:9")
    assert send_one(https_receiver) == "hello over the wire"
    assert proxy.tunnels == [f"127.0.0.1:{https_receiver.port}"]
    assert proxy.forwarded == []
    assert client.client_reports.totals() == {}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_streamed_envelope_goes_through_the_proxy(
    http_receiver: LocalReceiver,
    https_receiver: LocalReceiver,
    proxy: ProxyServer,
    ca_pem: str,
    scheme: str,
    tmp_path: Path,
) -> None:
    """A large attachment, sent with chunked transfer encoding, forwarded (http) or tunnelled (https)."""
    receiver = http_receiver if scheme == "http" else https_receiver
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    client = init(receiver.dsn, ca_certs=ca_pem, http_proxy=proxy.url())
    event_id = sf.send_feedback("large", attachments=[sf.Attachment(path=str(tmp_path / "big.bin"))], timeout=30)
    assert [a.data for a in receiver.store.list_attachments(event_id)] == [data]
    assert (proxy.forwarded != [], proxy.tunnels != []) == ((True, False) if scheme == "http" else (False, True))
    assert client.client_reports.totals() == {}


def test_https_dsn_falls_back_to_http_proxy_option(
    https_receiver: LocalReceiver, proxy: ProxyServer, ca_pem: str
) -> None:
    init(https_receiver.dsn, ca_certs=ca_pem, http_proxy=proxy.url())
    assert send_one(https_receiver) == "hello over the wire"
    assert proxy.tunnels == [f"127.0.0.1:{https_receiver.port}"]


def test_tls_is_verified_inside_the_tunnel(https_receiver: LocalReceiver, proxy: ProxyServer) -> None:
    client = init(https_receiver.dsn, https_proxy=proxy.url())
    assert send_one(https_receiver) is None
    assert len(proxy.tunnels) >= 1
    assert client.client_reports.totals() == NETWORK_ERROR


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_https_proxy_from_the_environment(
    https_receiver: LocalReceiver, proxy: ProxyServer, ca_pem: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, proxy.url())
    client = init(https_receiver.dsn, ca_certs=ca_pem)
    assert transport(client).proxy == proxy.url()
    assert send_one(https_receiver) == "hello over the wire"
    assert proxy.tunnels == [f"127.0.0.1:{https_receiver.port}"]


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_http_proxy_from_the_environment(
    http_receiver: LocalReceiver, proxy: ProxyServer, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, proxy.url())
    init(http_receiver.dsn)
    assert send_one(http_receiver) == "hello over the wire"
    assert proxy.forwarded == [f"POST {http_receiver.envelope_url}"]


def test_lower_case_variable_wins(
    http_receiver: LocalReceiver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url())
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    init(http_receiver.dsn)
    assert send_one(http_receiver) == "hello over the wire"
    assert len(proxy.forwarded) == 1


def test_http_dsn_ignores_https_proxy_variable(
    http_receiver: LocalReceiver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY is for https URLs: an http DSN goes direct."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    client = init(http_receiver.dsn)
    assert transport(client).proxy is None
    assert send_one(http_receiver) == "hello over the wire"
    assert proxy.requests == 0


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "example.com, 127.0.0.1", "*", "127.0.0.0/8", "{port}", "localhost,.example.com,{port}"]
)
def test_no_proxy_bypasses_the_proxy(
    https_receiver: LocalReceiver, proxy: ProxyServer, ca_pem: str, no_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", no_proxy.replace("{port}", f"127.0.0.1:{https_receiver.port}"))
    client = init(https_receiver.dsn, ca_certs=ca_pem)
    assert transport(client).proxy is None
    assert send_one(https_receiver) == "hello over the wire"
    assert proxy.requests == 0


@pytest.mark.parametrize("no_proxy", ["example.com", "127.0.0.2", "127.0.0.1:1", "10.0.0.0/8", ""])
def test_no_proxy_for_other_hosts_keeps_the_proxy(
    http_receiver: LocalReceiver, proxy: ProxyServer, no_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("no_proxy", no_proxy)
    init(http_receiver.dsn)
    assert send_one(http_receiver) == "hello over the wire"
    assert len(proxy.forwarded) == 1


def test_proxy_option_is_not_subject_to_no_proxy(
    http_receiver: LocalReceiver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    init(http_receiver.dsn, http_proxy=proxy.url())
    assert send_one(http_receiver) == "hello over the wire"
    assert len(proxy.forwarded) == 1


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_empty_option_overrides_the_environment(
    make_receiver: Receiver,
    ca: trustme.CA,
    proxy: ProxyServer,
    ca_pem: str,
    scheme: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = make_receiver(server_context(ca) if scheme == "https" else None)
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    client = init(receiver.dsn, ca_certs=ca_pem, **{f"{scheme}_proxy": ""})
    assert transport(client).proxy is None
    assert send_one(receiver) == "hello over the wire"
    assert proxy.requests == 0


def test_cgi_request_ignores_upper_case_http_proxy(
    http_receiver: LocalReceiver, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a CGI request HTTP_PROXY comes from the client's ``Proxy`` header ("httpoxy")."""
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    client = init(http_receiver.dsn)
    assert transport(client).proxy is None
    assert send_one(http_receiver) == "hello over the wire"
    assert proxy.requests == 0


# -- proxy credentials -------------------------------------------------------------------------------

USER, PASSWORD = "feedback-user", "s3cr3t-p@ss"
QUOTED_PASSWORD = "s3cr3t-p%40ss"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def auth_proxy() -> Iterator[ProxyServer]:
    with ProxyServer(credentials=(USER, PASSWORD)) as server:
        yield server


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_credentials_are_sent_and_never_logged(
    make_receiver: Receiver,
    ca: trustme.CA,
    ca_pem: str,
    auth_proxy: ProxyServer,
    scheme: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = make_receiver(server_context(ca) if scheme == "https" else None)
    with caplog.at_level(logging.DEBUG):
        client = init(receiver.dsn, ca_certs=ca_pem, **{f"{scheme}_proxy": auth_proxy.url(USER, QUOTED_PASSWORD)})
        assert send_one(receiver) == "hello over the wire"
    assert transport(client).proxy == auth_proxy.url()
    assert auth_proxy.rejected == 0
    assert auth_proxy.auth_seen and set(auth_proxy.auth_seen) == {f"Basic {TOKEN}"}
    assert (auth_proxy.tunnels if scheme == "https" else auth_proxy.forwarded) != []
    # The proxy only knows the credentials as the Proxy-Authorization header: the target never sees them.
    assert all("Proxy-Authorization" not in r.headers for r in receiver.received)
    assert "through the proxy http://127.0.0.1" in caplog.text  # the debug line is there, redacted
    for secret in (PASSWORD, QUOTED_PASSWORD, TOKEN):
        assert secret not in caplog.text


@pytest.mark.parametrize(("scheme", "reason"), [("http", "send_error"), ("https", "network_error")])
def test_wrong_proxy_credentials(
    make_receiver: Receiver,
    ca: trustme.CA,
    ca_pem: str,
    auth_proxy: ProxyServer,
    scheme: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 407 answer: for http it is the answer to the request (send_error); for https the tunnel fails."""
    receiver = make_receiver(server_context(ca) if scheme == "https" else None)
    with caplog.at_level(logging.DEBUG):
        client = init(receiver.dsn, ca_certs=ca_pem, **{f"{scheme}_proxy": auth_proxy.url(USER, "wrong-password")})
        assert send_one(receiver) is None
    assert client.client_reports.totals() == {(reason, "feedback"): 1}
    assert auth_proxy.rejected >= 1
    assert receiver.received == []
    assert "407" in caplog.text
    assert "wrong-password" not in caplog.text


def test_missing_proxy_credentials_are_a_407(http_receiver: LocalReceiver, auth_proxy: ProxyServer) -> None:
    client = init(http_receiver.dsn, http_proxy=auth_proxy.url())
    assert send_one(http_receiver) is None
    assert auth_proxy.auth_seen[0] is None
    assert client.client_reports.totals() == {("send_error", "feedback"): 1}


def test_credentials_in_a_proxy_environment_variable(
    http_receiver: LocalReceiver, auth_proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", auth_proxy.url(USER, QUOTED_PASSWORD))
    init(http_receiver.dsn)
    assert send_one(http_receiver) == "hello over the wire"
    assert set(auth_proxy.auth_seen) == {f"Basic {TOKEN}"}


def test_unusable_proxy_option_is_rejected_with_credentials_redacted(http_receiver: LocalReceiver) -> None:
    with pytest.raises(ValueError, match="http_proxy") as info:
        sf.init(http_receiver.dsn, http_proxy=f"socks5://{USER}:{PASSWORD}@127.0.0.1:1080")
    assert PASSWORD not in str(info.value)
    assert "socks5://127.0.0.1:1080" in str(info.value)


def test_unusable_proxy_variable_is_ignored_with_a_warning(
    http_receiver: LocalReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"socks5://{USER}:{PASSWORD}@127.0.0.1:1080")
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        client = init(http_receiver.dsn)
    assert transport(client).proxy is None
    assert "HTTP_PROXY" in caplog.text and PASSWORD not in caplog.text
    assert send_one(http_receiver) == "hello over the wire"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_sends_through_the_proxy_too(http_receiver: LocalReceiver, auth_proxy: ProxyServer) -> None:
    init(http_receiver.dsn, http_proxy=auth_proxy.url(USER, PASSWORD))
    assert send_one(http_receiver) is not None  # the parent now holds a connection to the proxy
    assert send_from_forked_child("from the child") == 0
    assert sorted(fb.message for fb in http_receiver.store.list_feedback()) == ["from the child", "hello over the wire"]
    assert len(auth_proxy.forwarded) == 2 and auth_proxy.rejected == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_the_proxy_connection_queue_is_locked(http_receiver: LocalReceiver, proxy: ProxyServer) -> None:
    """The child drops the inherited proxy manager without blocking on a lock another thread held at fork time."""
    client = init(http_receiver.dsn, http_proxy=proxy.url())
    assert send_one(http_receiver) is not None
    connections = transport(client)._pool.connection_from_url(http_receiver.url).pool
    assert connections is not None
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with connections.mutex:
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert locked.wait(5)
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                ok = sf.capture_feedback("from the child") is not None and sf.flush(5)
                code = 0 if ok else 2
            finally:
                os._exit(code)
        status: list[int] = []
        waiter = threading.Thread(target=lambda: status.append(os.waitpid(pid, 0)[1]), daemon=True)
        waiter.start()
        waiter.join(10)
        if not status:
            os.kill(pid, signal.SIGKILL)
            waiter.join(10)
            pytest.fail("the forked child hung")
    finally:
        release.set()
        holder.join(5)
    assert os.waitstatus_to_exitcode(status[0]) == 0
    assert len(proxy.forwarded) == 2


# -- TCP keep-alive -----------------------------------------------------------------------------------


def pooled_socket(client: sf.Client, url: str) -> socket.socket:
    pool = transport(client)._pool.connection_from_url(url)
    connections = [conn for conn in pool.pool.queue if conn is not None]  # type: ignore[union-attr]
    assert len(connections) == 1
    sock = connections[0].sock
    assert sock is not None, "the keep-alive connection was closed"
    return sock  # type: ignore[no-any-return]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_keep_alive_sets_so_keepalive(make_receiver: Receiver, ca: trustme.CA, ca_pem: str, scheme: str) -> None:
    receiver = make_receiver(server_context(ca) if scheme == "https" else None)
    client = init(receiver.dsn, ca_certs=ca_pem)
    assert send_one(receiver) is not None
    sock = pooled_socket(client, receiver.url)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # urllib3's defaults are kept
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 45
    if hasattr(socket, "TCP_KEEPINTVL"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
    if hasattr(socket, "TCP_KEEPCNT"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 6


def test_keep_alive_false_leaves_so_keepalive_off(http_receiver: LocalReceiver) -> None:
    client = init(http_receiver.dsn, keep_alive=False)
    assert send_one(http_receiver) is not None
    sock = pooled_socket(client, http_receiver.url)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_keep_alive_applies_to_the_connection_to_the_proxy(http_receiver: LocalReceiver, proxy: ProxyServer) -> None:
    client = init(http_receiver.dsn, http_proxy=proxy.url())
    assert send_one(http_receiver) is not None
    # For plain http, the ProxyManager pools connections by the proxy's address.
    sock = pooled_socket(client, http_receiver.url)
    assert sock.getpeername() == ("127.0.0.1", proxy.port)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0


# -- NO_PROXY matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("sentry.example.com", 443, "example.com", True),
        ("sentry.example.com", 443, ".example.com", True),
        ("example.com", 443, ".example.com", True),
        ("sentry.example.com", 443, "*.example.com", True),
        ("notexample.com", 443, "example.com", False),
        ("sentry.example.com", 443, "sentry.example.com:443", True),
        ("sentry.example.com", 8443, "sentry.example.com:443", False),
        ("SENTRY.Example.COM", 443, "sentry.example.COM", True),
        ("anything", 1, "*", True),
        ("anything", 1, " a , b ,,", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("::1", 80, "::1", True),
        ("::1", 80, "[::1]:80", True),
        ("::1", 80, "[::1]:81", False),
        ("::1", 80, "::/0", True),
        ("127.0.0.1", 80, "127.0.0.10", False),
        ("127.0.0.1", 80, "localhost", False),
        ("example.com", 80, "10.0.0.0/8", False),
    ],
)
def test_no_proxy_matching(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert _bypasses_proxy(host, port, no_proxy) is bypass
