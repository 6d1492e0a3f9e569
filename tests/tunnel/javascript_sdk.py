"""The real ``@sentry/browser`` for the browser test: installed with npm into a cache folder outside the repository.

The package is not kept in the repository: :func:`install` runs ``npm install`` into
``$SENTRY_FEEDBACK_JS_CACHE`` (default ``~/.cache/sentry-feedback-tests/js``, or under
``$XDG_CACHE_HOME``), one folder per pinned version, once. The page loads the SDK's own ES
modules, unbundled, through an import map made from each package's ``exports``
(:func:`import_map`), served by :func:`static_app`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: The exact version the test runs: a new one is a deliberate change.
VERSION = "11.12.0"
PACKAGE = f"@sentry/browser@{VERSION}"
#: Conditions of package ``exports`` a browser loading ES modules uses, in order.
_CONDITIONS = ("browser", "import", "module", "default")


def cache_dir() -> Path:
    """Where the pinned version is (to be) installed."""
    configured = os.environ.get("SENTRY_FEEDBACK_JS_CACHE")
    if configured:
        root = Path(configured)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = base / "sentry-feedback-tests" / "js"
    return root / f"sentry-browser-{VERSION}"


def installed(folder: Path) -> bool:
    """Whether ``folder`` holds the pinned version."""
    manifest = folder / "node_modules" / "@sentry" / "browser" / "package.json"
    try:
        return bool(json.loads(manifest.read_text("utf-8")).get("version") == VERSION)
    except (OSError, ValueError):
        return False


def install() -> Path:
    """The ``node_modules`` folder holding the pinned ``@sentry/browser``, installing it first if needed.

    Raises ``RuntimeError`` saying why when it cannot be had (no npm, no registry).
    """
    folder = cache_dir()
    if not installed(folder):
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise RuntimeError(f"node and npm are needed to install {PACKAGE} (apt-get install nodejs npm)")
        folder.mkdir(parents=True, exist_ok=True)
        command = [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--ignore-scripts", PACKAGE]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"npm install {PACKAGE} did not finish within 300 s") from None
        if result.returncode != 0 or not installed(folder):
            raise RuntimeError(f"npm install {PACKAGE} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return folder / "node_modules"


def _resolve(target: Any) -> str | None:
    if isinstance(target, str):
        return target
    if isinstance(target, dict):
        for condition in _CONDITIONS:
            if condition in target:
                found = _resolve(target[condition])
                if found is not None:
                    return found
    return None


def import_map(node_modules: Path, prefix: str) -> dict[str, dict[str, str]]:
    """``{"imports": {specifier: URL}}`` for every package installed and its subpath exports, under ``prefix``."""
    imports: dict[str, str] = {}
    manifests = [*node_modules.glob("*/package.json"), *node_modules.glob("@*/*/package.json")]
    for manifest in sorted(manifests):
        package = json.loads(manifest.read_text("utf-8"))
        name = package["name"]
        exports = package.get("exports") or {".": package.get("module") or package.get("main")}
        if not isinstance(exports, dict) or not any(key.startswith(".") for key in exports):
            exports = {".": exports}
        for subpath, target in exports.items():
            resolved = _resolve(target)
            if resolved is None or not resolved.endswith((".js", ".mjs")) or "*" in subpath:
                continue
            specifier = name if subpath == "." else f"{name}/{subpath.removeprefix('./')}"
            imports[specifier] = f"{prefix}/{name}/{resolved.removeprefix('./')}"
    return {"imports": imports}


def static_app(node_modules: Path) -> Any:
    """A WSGI app serving the ``.js``/``.mjs`` files under ``node_modules`` (nothing outside it)."""
    root = node_modules.resolve()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = (root / environ.get("PATH_INFO", "").lstrip("/")).resolve()
        if root not in path.parents or path.suffix not in (".js", ".mjs") or not path.is_file():
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        data = path.read_bytes()
        start_response("200 OK", [("Content-Type", "text/javascript"), ("Content-Length", str(len(data)))])
        return [data]

    return app
