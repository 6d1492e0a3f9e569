"""The transport's direct HTTP/1.1 exchange: answers as servers write them, and answers no server should write."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_feedback import _http1
from sentry_feedback.server import LocalReceiver


def answered(raw: bytes, *, close: bool = True) -> _http1.Answer:
    """The exchange's reading of ``raw`` as the server's answer (written by another thread)."""
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    theirs.settimeout(5)

    def serve() -> None:
        try:
            theirs.sendall(raw)
            if close:
                theirs.shutdown(socket.SHUT_WR)
        except OSError:  # the exchange stopped reading and closed its end
            pass

    server = threading.Thread(target=serve)
    server.start()
    try:
        return _http1.exchange(ours, b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    finally:
        ours.close()
        server.join(10)
        theirs.close()


def test_content_length_answer_keeps_the_connection() -> None:
    answer = answered(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"id":1}', close=False
    )
    assert (answer.status, answer.body, answer.reusable) == (200, b'{"id":1}', True)
    assert answer.headers == {"Content-Type": "application/json", "Content-Length": "8"}


def test_chunked_answer() -> None:
    answer = answered(
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    )
    assert (answer.status, answer.body, answer.reusable) == (429, b"abcde", True)


def test_informational_answers_are_skipped() -> None:
    answer = answered(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert (answer.status, answer.body) == (200, b"")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nbody until the end",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra bytes nobody asked for",
    ],
)
def test_answers_after_which_the_connection_is_not_reused(raw: bytes) -> None:
    assert answered(raw).reusable is False


def test_a_huge_answer_is_cut_and_the_connection_dropped() -> None:
    size = _http1.MAX_ANSWER * 4
    answer = answered(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size)
    assert answer.status == 500 and len(answer.body) == _http1.MAX_ANSWER and not answer.reusable
    chunked = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"8000\r\n" + b"y" * 0x8000 + b"\r\n") * 8
    answer = answered(chunked + b"0\r\n\r\n")
    assert len(answer.body) <= _http1.MAX_ANSWER and not answer.reusable


def test_repeated_headers_are_joined() -> None:
    answer = answered(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n")
    assert answer.headers == {"x-a": "1, 2", "Content-Length": "0"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"garbage\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 2xx OK\r\n\r\n", "not HTTP"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed in the middle"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n", "longer than its size"),
        (b"HTTP/1.1 200 OK\r\nContent-", "closed before the end"),
        (b"", "closed before the end"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (_http1.MAX_HEAD + 10), "too long"),
    ],
)
def test_answers_that_cannot_be_read_are_connection_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ConnectionError, match=message):
        answered(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_an_answer_or_a_connection_error(raw: bytes) -> None:
    try:
        answer = answered(raw)
    except ConnectionError:
        return
    assert 0 <= answer.status <= 999 and len(answer.body) <= _http1.MAX_ANSWER


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as server:
        yield server


def test_many_envelopes_over_one_kept_connection(receiver: LocalReceiver) -> None:
    import sentry_feedback as sf

    sf.init(receiver.dsn)
    for i in range(20):
        sf.capture_feedback(f"number {i}")
    assert sf.flush(10)
    assert receiver.wait_for_envelopes(20)
    assert receiver.connections_opened == 1
    assert sorted(f.message for f in receiver.store.list_feedback()) == sorted(f"number {i}" for i in range(20))
