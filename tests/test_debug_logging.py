"""Debugging aids: ``debug`` / ``SENTRY_DEBUG`` logs each envelope and its answer, and ServerError says why.

Everything goes over real sockets to the local receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator

import pytest

import sentry_feedback as sf
from sentry_feedback import Attachment
from sentry_feedback.server import LocalReceiver

KEY = "f00dcafe5ec7e7"  # a public key easy to spot if it leaked into a log line
SECRET_MESSAGE = "my card 4111 1111 1111 1111 was charged twice"


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver(public_key=KEY) as receiver:
        yield receiver


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="sentry_feedback")
    return caplog


def sdk_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("sentry_feedback")]


def envelope_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [line for line in sdk_lines(caplog) if line.startswith(("Sending envelope", "Envelope "))]


# -- the debug log -----------------------------------------------------------------------------


def test_each_envelope_and_its_answer_are_logged(receiver: LocalReceiver, debug_log: pytest.LogCaptureFixture) -> None:
    sf.init(dsn=receiver.dsn, debug=True)
    event_id = sf.send_feedback(
        SECRET_MESSAGE,
        email="jane@example.com",
        attachments=[Attachment(b"secret attachment", filename="a.txt"), Attachment(b"png", filename="b.png")],
        timeout=10,
    )
    sending, answered = envelope_lines(debug_log)
    url = re.escape(receiver.envelope_url)
    types = r"\[feedback, attachment, attachment\]"
    match = re.fullmatch(
        rf"Sending envelope {types} \(event_id={event_id}, (\d+) bytes, \d+ gzipped\) to {url}", sending
    )
    assert match is not None, sending
    (request,) = receiver.received
    assert int(match[1]) == len(request.body)  # the envelope as sent, before gzip
    assert re.fullmatch(r"Envelope answered 200 in \d+ ms", answered), answered
    everything = debug_log.text + "\n".join(sdk_lines(debug_log))
    for secret in ("sentry_key", "X-Sentry-Auth", "4111", "jane@example.com", "secret attachment"):
        assert secret not in everything
    assert KEY not in sending + answered


def test_uncompressed_envelopes_show_one_size(receiver: LocalReceiver, debug_log: pytest.LogCaptureFixture) -> None:
    sf.init(dsn=receiver.dsn, debug=True, compression_level=0)
    sf.send_feedback("x", timeout=10)
    sending = envelope_lines(debug_log)[0]
    assert re.fullmatch(r"Sending envelope \[feedback\] \(event_id=\w{32}, \d+ bytes\) to \S+", sending), sending


def test_a_429_logs_how_long_the_limit_lasts(receiver: LocalReceiver, debug_log: pytest.LogCaptureFixture) -> None:
    sf.init(dsn=receiver.dsn, debug=True)
    receiver.respond_with(429, headers={"Retry-After": "60"})
    with pytest.raises(sf.RateLimitedError):
        sf.send_feedback("x", timeout=10)
    answered = envelope_lines(debug_log)[1]
    assert re.fullmatch(r"Envelope answered 429 in \d+ ms, rate limited for 60 s", answered), answered


def test_rate_limits_on_a_200_are_logged_with_their_categories(
    receiver: LocalReceiver, debug_log: pytest.LogCaptureFixture
) -> None:
    sf.init(dsn=receiver.dsn, debug=True)
    receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "30:feedback;error:organization, 5:attachment"})
    sf.send_feedback("x", timeout=10)
    answered = envelope_lines(debug_log)[1]
    assert re.fullmatch(
        r"Envelope answered 200 in \d+ ms, rate limited for 30 s \(attachment, error, feedback\)", answered
    )


def test_an_error_answer_is_logged_with_what_the_server_said(
    receiver: LocalReceiver, debug_log: pytest.LogCaptureFixture
) -> None:
    sf.init(dsn=receiver.dsn, debug=True)
    receiver.respond_with(500, body=b"boom")
    with pytest.raises(sf.ServerError):
        sf.send_feedback("x", timeout=10)
    assert re.fullmatch(r"Envelope answered 500 in \d+ ms: boom", envelope_lines(debug_log)[1])


def test_a_network_failure_is_logged(debug_log: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    sf.init(f"http://{KEY}@127.0.0.1:{port}/1", debug=True, retry=sf.RetryPolicy(max_attempts=1))
    with pytest.raises(sf.NetworkError):
        sf.send_feedback("x", timeout=10)
    failed = envelope_lines(debug_log)[1]
    assert re.fullmatch(rf"Envelope failed after \d+ ms: could not send to 127\.0\.0\.1:{port}: .+", failed), failed
    assert KEY not in failed and "sentry_key" not in debug_log.text


def test_without_debug_nothing_is_logged_per_envelope(
    receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    sf.init(dsn=receiver.dsn)
    with caplog.at_level(logging.INFO, logger="sentry_feedback"):
        sf.send_feedback("x", timeout=10)
    assert envelope_lines(caplog) == []


# -- SENTRY_DEBUG --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On", " on "])
def test_sentry_debug_turns_debug_on(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SENTRY_DEBUG", value)
    assert sf.Options.build().debug is True


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "debug"])
def test_other_sentry_debug_values_leave_it_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SENTRY_DEBUG", value)
    assert sf.Options.build().debug is False


def test_the_option_wins_over_sentry_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DEBUG", "1")
    assert sf.Options.build(debug=False).debug is False
    monkeypatch.setenv("SENTRY_DEBUG", "0")
    assert sf.Options.build(debug=True).debug is True
    monkeypatch.delenv("SENTRY_DEBUG")
    assert sf.Options.build().debug is False


def test_sentry_debug_prints_the_envelope_log_to_stderr(
    receiver: LocalReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENTRY_DEBUG", "true")
    client = sf.init(dsn=receiver.dsn)
    assert client.options.debug
    sf.send_feedback("x", timeout=10)
    err = capsys.readouterr().err
    assert " [sentry_feedback] DEBUG: Sending envelope [feedback] (event_id=" in err
    assert re.search(r" \[sentry_feedback\] DEBUG: Envelope answered 200 in \d+ ms\n", err), err


# -- ServerError says what the server said -------------------------------------------------------


def test_a_wrong_key_raises_with_the_servers_detail(receiver: LocalReceiver) -> None:
    sf.init(dsn=receiver.dsn.replace(KEY, "x"))
    with pytest.raises(sf.ServerError) as caught:
        sf.send_feedback("x", timeout=10)
    assert str(caught.value) == "the server answered HTTP 401: invalid sentry_key 'x'"
    assert (caught.value.status, caught.value.detail) == (401, "invalid sentry_key 'x'")
    assert caught.value.event_id is not None
    assert sf.get_client().client_reports.totals() == {("send_error", "feedback"): 1}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, b"boom", "the server answered HTTP 500: boom"),
        (503, b"", "the server answered HTTP 503"),
        (400, b'{"detail": "invalid envelope", "causes": ["bad item header"]}', "invalid envelope (bad item header)"),
        (400, b'{"detail": {"code": "x"}}', 'the server answered HTTP 400: {"code": "x"}'),
        (502, b"<html>\r\n<h1>Bad\tGateway</h1>\x1b[2J", r"502: <html>\r\n<h1>Bad\tGateway</h1>\x1b[2J"),
        (500, "\u202eevil\u2028line".encode(), r"500: \u202eevil\u2028line"),
        (500, b"\xff\xfe oops", "500: \ufffd\ufffd oops"),
        (413, b'{"detail": "envelope exceeded size limits"}', "413: envelope exceeded size limits"),
    ],
)
def test_server_error_messages(receiver: LocalReceiver, status: int, body: bytes, message: str) -> None:
    sf.init(dsn=receiver.dsn)
    receiver.respond_with(status, body=body)
    with pytest.raises(sf.ServerError) as caught:
        sf.send_feedback("x", timeout=10)
    assert caught.value.status == status
    assert str(caught.value).startswith(f"the server answered HTTP {status}")
    assert str(caught.value).endswith(message)


def test_a_long_body_is_cut_to_an_excerpt(receiver: LocalReceiver, caplog: pytest.LogCaptureFixture) -> None:
    sf.init(dsn=receiver.dsn)
    receiver.respond_with(500, body=b"x" * 150 + b"\n" + b"y" * 5000)
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"), pytest.raises(sf.ServerError) as caught:
        sf.send_feedback("x", timeout=10)
    assert caught.value.detail == "x" * 150 + "\\n" + "y" * 49 + "..."
    assert caught.value.detail in caplog.text  # the warning shows the same escaped excerpt


def test_detail_of_answers_without_a_server() -> None:
    answer = sf.TransportResponse
    assert answer(400, body=json.dumps({"detail": "a\nb"}).encode()).detail == "a\\nb"
    assert answer(400, body=b'{"detail": null, "x": 1}').detail == '{"detail": null, "x": 1}'
    assert answer(400, body=b"{not json").detail == "{not json"
    assert answer(400, body=b"  \n").detail == ""
    assert answer(400, body=b'{"detail": "' + b"d" * 300 + b'"}').detail == "d" * 200 + "..."
