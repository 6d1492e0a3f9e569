"""Integrations at their edges: nameless integrations, frameworks imported late, blocked or odd modules,
failing deferred setup, and import hooks on modules that are missing, refused or loaded by hand."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import sentry_feedback as sf
from sentry_feedback.integrations import Integration, _ImportWatcher, when_imported
from sentry_feedback.integrations.flask import FlaskIntegration
from sentry_feedback.testing import MockTransport


@pytest.fixture
def modules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` for modules the test writes; they are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("edge_"):
            del sys.modules[name]


def test_an_integration_without_identifier_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    class Nameless(Integration):
        calls: ClassVar[list[str]] = []

        def setup_once(self) -> None:
            self.calls.append("setup_once")

        def setup(self, client: sf.Client) -> None:
            self.calls.append("setup")

    transport = MockTransport()
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        client = sf.init(transport=transport, default_integrations=False, integrations=[Nameless()])
    assert client.integrations == {}
    assert Nameless.calls == []
    assert "integration <Nameless ''> has no identifier; ignored" in caplog.text
    sf.capture_feedback("still works")
    assert sf.flush(5)
    assert transport.feedback[0]["sdk"].get("integrations", []) == []


def test_setup_once_waits_for_a_submodule_to_be_imported(modules_dir: Path) -> None:
    package = modules_dir / "edge_framework_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("CREATED = True\n")
    seen: list[object] = []

    class Submodule(Integration):
        identifier: ClassVar[str] = "edge-submodule"
        patches: ClassVar[str | None] = "edge_framework_pkg.app"

        def setup_once(self) -> None:
            seen.append(sys.modules["edge_framework_pkg.app"].CREATED)

    client = sf.init(transport=MockTransport(), default_integrations=False, integrations=[Submodule()])
    assert sorted(client.integrations) == ["edge-submodule"]
    assert seen == []  # not imported yet
    assert "edge_framework_pkg.app" not in sys.modules
    importlib.import_module("edge_framework_pkg.app")
    assert seen == [True]


def test_setup_once_runs_at_once_when_the_patched_package_cannot_be_looked_up() -> None:
    ran: list[str] = []

    class Missing(Integration):
        identifier: ClassVar[str] = "edge-missing-parent"
        patches: ClassVar[str | None] = "edge_no_such_package.sub"

        def setup_once(self) -> None:
            ran.append("setup_once")

    client = sf.init(transport=MockTransport(), default_integrations=False, integrations=[Missing()])
    assert ran == ["setup_once"]  # nothing to wait for
    assert sorted(client.integrations) == ["edge-missing-parent"]


def test_a_deferred_setup_once_that_fails_is_logged_and_the_import_still_works(
    modules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (modules_dir / "edge_fragile_framework.py").write_text("VERSION = '1.0'\n")

    class Fragile(Integration):
        identifier: ClassVar[str] = "edge-fragile"
        patches: ClassVar[str | None] = "edge_fragile_framework"

        def setup_once(self) -> None:
            raise RuntimeError("cannot patch this version")

    client = sf.init(transport=MockTransport(), default_integrations=False, integrations=[Fragile()])
    assert sorted(client.integrations) == ["edge-fragile"]  # its per-client setup ran
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        module = importlib.import_module("edge_fragile_framework")
    assert module.VERSION == "1.0"
    (record,) = [r for r in caplog.records if r.name == "sentry_feedback"]
    assert record.getMessage().startswith(
        "could not set up the edge-fragile integration once <module 'edge_fragile_framework'"
    )
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(None, id="import-blocked"),
        pytest.param(types.ModuleType("flask"), id="module-without-spec"),
    ],
)
def test_auto_enabling_skips_a_framework_that_is_blocked_or_has_no_spec(
    entry: types.ModuleType | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "flask", entry)  # type: ignore[arg-type]
    client = sf.init(transport=MockTransport())
    assert "flask" not in client.integrations
    assert client.get_integration(FlaskIntegration) is None
    assert {"django", "fastapi", "starlette"} <= set(client.integrations)


# -- when_imported -----------------------------------------------------------------------------------


class _Refusing:
    """A ``sys.meta_path`` finder that refuses some imports, as sandboxes and import blockers do."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == self.name:
            raise ImportError(f"{fullname} is blocked here")
        return None


def test_a_refused_import_fails_with_its_error_and_the_hook_runs_at_a_later_import(
    modules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (modules_dir / "edge_refused.py").write_text("VALUE = 7\n")
    seen: list[int] = []
    when_imported("edge_refused", lambda module: seen.append(module.VALUE))
    refusing = _Refusing("edge_refused")
    # Ahead of the usual finders, behind the SDK's watcher.
    watcher = next(i for i, finder in enumerate(sys.meta_path) if isinstance(finder, _ImportWatcher))
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path[: watcher + 1], refusing, *sys.meta_path[watcher + 1 :]])
    with pytest.raises(ImportError, match="edge_refused is blocked here"):
        importlib.import_module("edge_refused")
    assert seen == []
    sys.meta_path.remove(refusing)
    assert importlib.import_module("edge_refused").VALUE == 7
    assert seen == [7]


def test_a_hook_on_a_missing_module_waits_until_it_exists(modules_dir: Path) -> None:
    seen: list[str] = []
    when_imported("edge_written_later", lambda module: seen.append(module.__name__))
    with pytest.raises(ModuleNotFoundError, match="edge_written_later"):
        importlib.import_module("edge_written_later")
    assert seen == []
    (modules_dir / "edge_written_later.py").write_text("")
    importlib.invalidate_caches()
    importlib.import_module("edge_written_later")
    assert seen == ["edge_written_later"]


def test_a_watched_module_loaded_by_hand_answers_like_its_own_loader_and_runs_the_hook(modules_dir: Path) -> None:
    source = "ANSWER = 42\n"
    path = modules_dir / "edge_by_hand.py"
    path.write_text(source)
    seen: list[int] = []
    when_imported("edge_by_hand", lambda module: seen.append(module.ANSWER))
    spec = importlib.util.find_spec("edge_by_hand")
    assert spec is not None and spec.loader is not None
    # The loader's other methods are the module's own loader's.
    assert spec.loader.get_source("edge_by_hand") == source  # type: ignore[attr-defined]
    assert spec.loader.get_filename("edge_by_hand") == str(path)  # type: ignore[attr-defined]
    assert spec.loader.is_package("edge_by_hand") is False  # type: ignore[attr-defined]
    module = importlib.util.module_from_spec(spec)
    sys.modules["edge_by_hand"] = module
    spec.loader.exec_module(module)
    assert module.ANSWER == 42
    assert seen == [42]
    assert type(module.__loader__).__name__ == "SourceFileLoader"
