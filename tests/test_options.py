from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback._dsn import Dsn
from sentry_feedback._envelope import Envelope
from sentry_feedback._options import Options
from sentry_feedback._transport import FunctionTransport, Transport, TransportResponse

DSN = "https://key@o1.ingest.sentry.io/42"
ENV_VARS = ("SENTRY_DSN", "SENTRY_RELEASE", "SENTRY_ENVIRONMENT")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def _kw(name: str, value: object) -> dict[str, Any]:
    return {name: value}


class _NullTransport(Transport):
    def send(self, envelope: Envelope) -> TransportResponse | None:
        return None


def test_defaults() -> None:
    options = Options.build()
    assert options.dsn is None
    assert options.release is None
    assert options.environment == "production"
    assert options.sample_rate == 1.0
    assert options.send_client_reports is True
    assert options.transport is None


@pytest.mark.parametrize("name", ["dns", "sample_rat", "before_sned", "foo"])
def test_unknown_option_is_type_error_naming_it(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        Options.build(**_kw(name, 1))


def test_several_unknown_options_all_named() -> None:
    with pytest.raises(TypeError) as info:
        Options.build(zzz=1, aaa=2)
    assert "aaa" in str(info.value)
    assert "zzz" in str(info.value)


def test_dsn_string_parsed() -> None:
    options = Options.build(DSN)
    assert options.dsn == Dsn.parse(DSN)


def test_dsn_object_kept() -> None:
    dsn = Dsn.parse(DSN)
    assert Options.build(dsn).dsn is dsn


def test_dsn_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", DSN)
    assert Options.build().dsn == Dsn.parse(DSN)


def test_explicit_dsn_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://envkey@env.example/1")
    assert Options.build(DSN).dsn == Dsn.parse(DSN)


def test_empty_dsn_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Options.build("").dsn is None
    monkeypatch.setenv("SENTRY_DSN", DSN)
    assert Options.build("").dsn is None


def test_empty_env_dsn_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "")
    assert Options.build().dsn is None


@pytest.mark.parametrize("dsn", ["not a dsn", "ftp://key@host/1", "https://key@host/abc"])
def test_malformed_dsn_is_value_error(dsn: str) -> None:
    with pytest.raises(ValueError, match="DSN"):
        Options.build(dsn)


def test_malformed_env_dsn_is_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://host/1")
    with pytest.raises(ValueError, match="public key"):
        Options.build()


def test_release_and_environment_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_RELEASE", "app@1.2.3")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    options = Options.build()
    assert options.release == "app@1.2.3"
    assert options.environment == "staging"


def test_explicit_release_and_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_RELEASE", "env-release")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "env-environment")
    options = Options.build(release="explicit", environment="dev")
    assert options.release == "explicit"
    assert options.environment == "dev"


@pytest.mark.parametrize("value", [None, ""])
def test_environment_defaults_to_production(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is not None:
        monkeypatch.setenv("SENTRY_ENVIRONMENT", value)
    assert Options.build().environment == "production"
    assert Options.build(environment=None).environment == "production"


def test_empty_release_env_var_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_RELEASE", "")
    assert Options.build().release is None


def test_build_does_not_mutate_caller_kwargs() -> None:
    kwargs: dict[str, Any] = {"debug": True}
    Options.build(**kwargs)
    assert kwargs == {"debug": True}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sample_rate", 1.5),
        ("sample_rate", -0.1),
        ("sample_rate", "x"),
        ("sample_rate", None),
        ("sample_rate", True),
        ("max_breadcrumbs", -1),
        ("max_breadcrumbs", 1.5),
        ("max_breadcrumbs", True),
        ("max_breadcrumbs", "10"),
        ("transport_queue_size", 0),
        ("transport_queue_size", -3),
        ("compression_level", 10),
        ("compression_level", -1),
        ("http_timeout", 0),
        ("http_timeout", -1.0),
        ("http_timeout", "10"),
        ("shutdown_timeout", -0.5),
        ("max_attachment_size", -1),
        ("before_send", 3),
        ("before_send", "lambda e, h: e"),
        ("before_send_feedback", 3),
        ("debug", "yes"),
        ("debug", 1),
        ("send_default_pii", "true"),
        ("send_client_reports", None),
        ("release", 123),
        ("environment", 1),
        ("dist", 1.0),
        ("server_name", b"host"),
        ("ca_certs", 0),
        ("transport", 42),
        ("transport", "http"),
    ],
)
def test_bad_value_is_value_error_naming_option(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        Options.build(**_kw(name, value))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sample_rate", 0),
        ("sample_rate", 0.0),
        ("sample_rate", 1),
        ("sample_rate", 0.5),
        ("max_breadcrumbs", 0),
        ("transport_queue_size", 1),
        ("compression_level", 0),
        ("compression_level", 9),
        ("http_timeout", 0.001),
        ("shutdown_timeout", 0),
        ("max_attachment_size", 0),
        ("before_send", lambda event, hint: event),
        ("before_send_feedback", None),
        ("debug", True),
        ("release", "1.0"),
        ("dist", None),
        ("transport", lambda envelope: None),
        ("transport", _NullTransport),
        ("transport", _NullTransport()),
        ("transport", FunctionTransport(lambda envelope: None)),
    ],
)
def test_good_values_accepted(name: str, value: object) -> None:
    assert getattr(Options.build(**_kw(name, value)), name) == value


@pytest.mark.parametrize("name", ["sample_rate", "http_timeout", "shutdown_timeout"])
def test_nan_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Options.build(**_kw(name, float("nan")))


def test_replace_applies_changes() -> None:
    options = Options.build(DSN, release="a")
    changed = options.replace(release="b", sample_rate=0.5)
    assert changed.release == "b"
    assert changed.sample_rate == 0.5
    assert changed.dsn == options.dsn
    assert options.release == "a"


@pytest.mark.parametrize(
    ("name", "value"), [("sample_rate", 2.0), ("debug", "yes"), ("transport", 42), ("compression_level", 10)]
)
def test_replace_validates(name: str, value: object) -> None:
    options = Options.build()
    with pytest.raises(ValueError, match=name):
        options.replace(**_kw(name, value))


def test_replace_unknown_field_is_type_error() -> None:
    with pytest.raises(TypeError):
        Options.build().replace(nope=1)


@pytest.mark.parametrize(("name", "value"), [("release", "x"), ("sample_rate", 0.5), ("dsn", None)])
def test_options_are_frozen(name: str, value: object) -> None:
    options = Options.build(DSN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(options, name, value)


@pytest.mark.parametrize("name", ["ca_certs", "cert_file"])
def test_unreadable_tls_files_are_refused_at_init(name: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match=f"option '{name}': cannot read"):
        sentry_feedback.init("http://public@127.0.0.1:9/1", **{name: missing})


def test_init_does_not_import_urllib3_or_ssl() -> None:
    import subprocess
    import sys

    code = (
        "import sys, sentry_feedback\n"
        "sentry_feedback.init('http://public@127.0.0.1:9/1', auto_enabling_integrations=False)\n"
        "sentry_feedback.close(1)  # nothing was sent: nothing to import either\n"
        "print(sorted(m for m in ('urllib3', 'ssl', 'certifi') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
