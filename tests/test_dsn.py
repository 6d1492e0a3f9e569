from __future__ import annotations

import dataclasses

import pytest

from sentry_feedback._dsn import SDK_NAME, USER_AGENT, Dsn
from sentry_feedback._version import __version__


@pytest.mark.parametrize(
    ("value", "fields", "envelope_url"),
    [
        (
            "https://key@o1.ingest.sentry.io/42",
            {"scheme": "https", "public_key": "key", "host": "o1.ingest.sentry.io", "project_id": "42"},
            "https://o1.ingest.sentry.io/api/42/envelope/",
        ),
        (
            "http://abc123@localhost/1",
            {"scheme": "http", "public_key": "abc123", "host": "localhost", "project_id": "1"},
            "http://localhost/api/1/envelope/",
        ),
        (
            "http://key@localhost:9000/7",
            {"host": "localhost", "port": 9000, "project_id": "7"},
            "http://localhost:9000/api/7/envelope/",
        ),
        (
            "https://key:secret@sentry.example.com/5",
            {"public_key": "key", "secret_key": "secret", "port": None},
            "https://sentry.example.com/api/5/envelope/",
        ),
        (
            "https://key@host/prefix/sub/42",
            {"path_prefix": "prefix/sub", "project_id": "42"},
            "https://host/prefix/sub/api/42/envelope/",
        ),
        (
            "https://key@host/prefix/42/",
            {"path_prefix": "prefix", "project_id": "42"},
            "https://host/prefix/api/42/envelope/",
        ),
        (
            "https://key@host:8443/a/b/c/99",
            {"port": 8443, "path_prefix": "a/b/c", "project_id": "99"},
            "https://host:8443/a/b/c/api/99/envelope/",
        ),
        (
            "http://key@[::1]:9000/3",
            {"host": "[::1]", "port": 9000, "project_id": "3"},
            "http://[::1]:9000/api/3/envelope/",
        ),
        (
            "http://key@[2001:db8::7]/12",
            {"host": "[2001:db8::7]", "port": None},
            "http://[2001:db8::7]/api/12/envelope/",
        ),
        (
            "  https://key@host/42  ",
            {"host": "host", "project_id": "42"},
            "https://host/api/42/envelope/",
        ),
        (
            "HTTPS://key@HOST.example/42",
            {"scheme": "https", "host": "host.example"},
            "https://host.example/api/42/envelope/",
        ),
        (
            "https://key:@host/42",
            {"secret_key": None},
            "https://host/api/42/envelope/",
        ),
    ],
)
def test_parse(value: str, fields: dict[str, object], envelope_url: str) -> None:
    dsn = Dsn.parse(value)
    for name, expected in fields.items():
        assert getattr(dsn, name) == expected, name
    assert dsn.envelope_url == envelope_url


def test_defaults_without_optional_parts() -> None:
    dsn = Dsn.parse("https://key@host/42")
    assert dsn.port is None
    assert dsn.path_prefix == ""
    assert dsn.secret_key is None
    assert dsn.netloc == "host"


def test_netloc_with_port() -> None:
    assert Dsn.parse("http://key@[::1]:9000/3").netloc == "[::1]:9000"


@pytest.mark.parametrize(
    "value",
    [
        "https://key@o1.ingest.sentry.io/42",
        "http://key@localhost:9000/7",
        "https://key:secret@sentry.example.com/5",
        "https://key@host/prefix/sub/42",
        "http://key@[::1]:9000/3",
        "http://key:s@[2001:db8::7]:1/a/12",
    ],
)
def test_str_round_trip(value: str) -> None:
    dsn = Dsn.parse(value)
    assert str(dsn) == value
    assert Dsn.parse(str(dsn)) == dsn


def test_str_normalizes_trailing_slash() -> None:
    assert str(Dsn.parse("https://key@host/prefix/42/")) == "https://key@host/prefix/42"


def test_auth_header_default_client() -> None:
    header = Dsn.parse("https://pub@host/42").auth_header()
    assert header == f"Sentry sentry_version=7, sentry_key=pub, sentry_client={USER_AGENT}"
    assert f"sentry-feedback/{__version__}" == USER_AGENT
    assert "sentry_secret" not in header


def test_auth_header_custom_client_and_secret() -> None:
    header = Dsn.parse("https://pub:sec@host/42").auth_header("my-client/1.2")
    assert header == "Sentry sentry_version=7, sentry_key=pub, sentry_client=my-client/1.2, sentry_secret=sec"


def test_sdk_name() -> None:
    assert SDK_NAME == "sentry.python.feedback"


def test_dsn_is_frozen_and_hashable() -> None:
    dsn = Dsn.parse("https://key@host/42")
    with pytest.raises(dataclasses.FrozenInstanceError):
        dsn.host = "other"  # type: ignore[misc]
    assert hash(dsn) == hash(Dsn.parse("https://key@host/42"))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("ftp://key@host/42", "scheme"),
        ("key@host/42", "scheme"),
        ("//key@host/42", "scheme"),
        ("", "scheme"),
        ("wss://key@host/42", "scheme"),
        ("https://host/42", "public key"),
        ("https://@host/42", "public key"),
        ("https://:secret@host/42", "public key"),
        ("https://key@/42", "host"),
        ("https://key@:9000/42", "host"),
        ("https://key@host", "project id"),
        ("https://key@host/", "project id"),
        ("https://key@host//", "project id"),
        ("https://key@host/abc", "project id"),
        ("https://key@host/42abc", "project id"),
        ("https://key@host/prefix/4-2", "project id"),
        ("https://key@host/-42", "project id"),
        ("https://key@host/4.2", "project id"),
        ("https://key@host:abc/42", "(?i)port"),
        ("https://key@host:99999/42", "(?i)port"),
        ("https://key@host:-1/42", "(?i)port"),
        ("https://key@host/42?foo=bar", "query"),
        ("https://key@host/42?sentry_key=abc", "query"),
        ("https://key@host/42#frag", "fragment"),
    ],
)
def test_malformed_dsn_names_the_problem(value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Dsn.parse(value)


@pytest.mark.parametrize("value", [None, 42, b"https://key@host/42", ["https://key@host/42"]])
def test_non_string_dsn(value: object) -> None:
    with pytest.raises(ValueError, match="string"):
        Dsn.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("project", ["\u00b2", "\u0664\u0662"])
def test_non_ascii_digit_project_id_rejected(project: str) -> None:
    # Regression: str.isdigit() alone accepts these and they would end up in the envelope URL.
    with pytest.raises(ValueError, match="project id"):
        Dsn.parse(f"https://key@host/{project}")
