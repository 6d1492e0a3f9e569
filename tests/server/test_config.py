"""``ServerConfig``: the configuration file of ``sentry-feedback serve --config``, good and hostile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_feedback.server import ApiToken, Project, ServerConfig

GOOD = {
    "org": "acme",
    "projects": [{"slug": "web", "id": 7, "public_key": "webkey"}, {"slug": "app", "id": "8", "public_key": "appkey"}],
    "tokens": ["a-read-write-token", {"value": "a-read-token", "scopes": ["read"]}],
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_a_good_configuration(tmp_path: Path) -> None:
    config = ServerConfig.load(write(tmp_path, GOOD))
    assert config.org == "acme"
    assert config.projects == (Project("web", "7", "webkey"), Project("app", "8", "appkey"))
    assert [(t.value, sorted(t.scopes)) for t in config.tokens] == [
        ("a-read-write-token", ["read", "write"]),
        ("a-read-token", ["read"]),
    ]
    assert config.project("web") is config.project("7") is config.projects[0]
    assert config.project("nope") is None
    assert config.token("a-read-token") is config.tokens[1]
    assert config.token("a-read-token!") is None
    assert "a-read-token" not in repr(config)  # token values never show


def test_an_empty_object_is_the_default_configuration(tmp_path: Path) -> None:
    assert ServerConfig.load(write(tmp_path, {})) == ServerConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not JSON: "),
        ("", "not JSON: "),
        ([], "the configuration must be a JSON object"),
        ("null", "the configuration must be a JSON object"),
        ({"org": "acme", "extra": 1, "more": 2}, "unknown configuration keys: extra, more"),
        ({"org": "Not A Slug"}, "invalid organization slug 'Not A Slug'"),
        ({"org": 5}, "invalid organization slug 5"),
        ({"org": "a" * 51}, "invalid organization slug"),
        ({"projects": {}}, "projects must be a list"),
        ({"projects": ["web"]}, 'a project is {"slug": ..., "id": ..., "public_key": ...}'),
        ({"projects": [{"slug": "web", "id": 1, "public_key": "k", "x": 1}]}, "a project is"),
        ({"projects": [{"slug": "web", "id": 1}]}, 'a project is {"slug": ..., "id": ..., "public_key": ...}'),
        ({"projects": [{}]}, 'a project is {"slug": ..., "id": ..., "public_key": ...}'),
        ({"projects": [{"slug": "Web", "id": 1, "public_key": "k"}]}, "invalid project slug 'Web'"),
        ({"projects": [{"slug": 7, "id": 1, "public_key": "k"}]}, "invalid project slug 7"),
        ({"projects": [{"slug": "web", "id": 0, "public_key": "k"}]}, "invalid project id '0'"),
        ({"projects": [{"slug": "web", "id": -1, "public_key": "k"}]}, "invalid project id '-1'"),
        ({"projects": [{"slug": "web", "id": "1e3", "public_key": "k"}]}, "invalid project id '1e3'"),
        ({"projects": [{"slug": "web", "id": 10**18, "public_key": "k"}]}, "invalid project id"),
        ({"projects": [{"slug": "web", "id": 1, "public_key": "a key"}]}, "invalid public key 'a key'"),
        ({"projects": [{"slug": "web", "id": 1, "public_key": ""}]}, "invalid public key ''"),
        ({"projects": [{"slug": "web", "id": 1, "public_key": None}]}, "invalid public key None"),
        (
            {"projects": [{"slug": "a", "id": 1, "public_key": "k"}, {"slug": "a", "id": 2, "public_key": "l"}]},
            "two projects have the same slug",
        ),
        (
            {"projects": [{"slug": "a", "id": 1, "public_key": "k"}, {"slug": "b", "id": "1", "public_key": "l"}]},
            "two projects have the same id",
        ),
        (
            {"projects": [{"slug": "a", "id": 1, "public_key": "k"}, {"slug": "b", "id": 2, "public_key": "k"}]},
            "two projects have the same public key",
        ),
        ({"tokens": "a-read-write-token"}, "tokens must be a list"),
        ({"tokens": ["short"]}, "an API token is 8-512 visible ASCII characters"),
        ({"tokens": ["with a space"]}, "an API token is 8-512 visible ASCII characters"),
        ({"tokens": ["x" * 513]}, "an API token is 8-512 visible ASCII characters"),
        ({"tokens": ["t\u00f6ken-with-umlaut"]}, "an API token is 8-512 visible ASCII characters"),
        ({"tokens": [12345678]}, 'a token is "value" or {"value": ..., "scopes": ["read", "write"]}'),
        ({"tokens": [{"value": "long-enough", "scope": ["read"]}]}, 'a token is "value" or'),
        ({"tokens": [{"scopes": ["read"]}]}, 'a token is "value" or'),
        ({"tokens": [{"value": "long-enough", "scopes": "read"}]}, "token scopes must be a list of strings"),
        ({"tokens": [{"value": "long-enough", "scopes": [1]}]}, "token scopes must be a list of strings"),
        ({"tokens": [{"value": "long-enough", "scopes": []}]}, "token scopes must be some of ['read', 'write']"),
        ({"tokens": [{"value": "long-enough", "scopes": ["admin"]}]}, "not ['admin']"),
    ],
)
def test_a_bad_configuration_is_refused_with_its_reason(tmp_path: Path, data: Any, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ValueError) as caught:
        ServerConfig.load(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: "), text
    assert message in text, text


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        ServerConfig.load(tmp_path / "missing.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError):  # not UTF-8 (UnicodeDecodeError is a ValueError)
        ServerConfig.load(tmp_path / "binary.json")


def test_a_server_needs_a_project() -> None:
    with pytest.raises(ValueError, match="a server needs at least one project"):
        ServerConfig(projects=())
    with pytest.raises(ValueError, match="token scopes must be some of"):
        ApiToken("long-enough", frozenset({"read", "delete"}))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
CONFIG_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "org": JSON | st.sampled_from(["acme", "a-b_c"]),
        "projects": JSON | st.lists(st.dictionaries(st.sampled_from(["slug", "id", "public_key"]), JSON), max_size=3),
        "tokens": JSON | st.lists(JSON | st.text(min_size=8, max_size=12), max_size=3),
    },
)


@settings(max_examples=200, deadline=None)
@given(data=JSON | CONFIG_LIKE)
def test_any_json_is_a_configuration_or_a_value_error(data: Any) -> None:
    """Whatever the parsed file holds, ``from_dict`` answers a valid configuration or ``ValueError``."""
    try:
        config = ServerConfig.from_dict(data)
    except ValueError:
        return
    assert config.projects and all(isinstance(p, Project) for p in config.projects)
    assert all(isinstance(t, ApiToken) for t in config.tokens)
