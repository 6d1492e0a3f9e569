"""docs/api.md's table "The JavaScript SDK's API, in Python" is complete and true.

- It has one row for each function of the top-level API of Sentry's JavaScript SDK (the list of
  https://docs.sentry.io/platforms/javascript/configuration/apis/, copied below), in that list's order.
- Every Python name it gives exists in ``sentry_feedback`` (a public name, or an attribute path on one,
  such as ``Scope.set_tag``), and takes the parameters the table shows.
- Every function it maps is called by some test (under tests/, other than this file and test_api.py,
  which checks the public names only).
- A row whose function does not apply says why (browser only).
- Its links lead to pages and headings that exist.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import sentry_feedback

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
PAGE = DOCS / "api.md"
HEADING = "## The JavaScript SDK's API, in Python"
NOT_CALLERS = frozenset({"test_api_mapping.py", "test_api.py"})
#: The package's public names (its ``__all__``).
PUBLIC = frozenset(importlib.import_module("sentry_feedback").__all__)

#: The functions of the JavaScript SDK's top-level API, in the order of its APIs page.
JAVASCRIPT_API = (
    # Core APIs
    "init",
    "getClient",
    "setCurrentClient",
    "lastEventId",
    "flush",
    "isEnabled",
    "close",
    "addEventProcessor",
    "addIntegration",
    "lazyLoadIntegration",
    # Capturing events
    "captureException",
    "captureMessage",
    # Enriching events
    "setTag",
    "setTags",
    "setContext",
    "setExtra",
    "setExtras",
    "setUser",
    "addBreadcrumb",
    # Tracing
    "startSpan",
    "startInactiveSpan",
    "startSpanManual",
    "setActiveSpanInBrowser",
    "continueTrace",
    "suppressTracing",
    "startNewTrace",
    "startBrowserTracingPageLoadSpan",
    "startBrowserTracingNavigationSpan",
    "reportPageLoaded",
    # Tracing utilities
    "spanToJSON",
    "updateSpanName",
    "setHttpStatus",
    "getActiveSpan",
    "getRootSpan",
    "withActiveSpan",
    "setConversationId",
    # Sessions
    "startSession",
    "endSession",
    "captureSession",
    # Scopes
    "withScope",
    "withIsolationScope",
    "getCurrentScope",
    "getIsolationScope",
    "getGlobalScope",
    # User feedback
    "captureFeedback",
    "getFeedback",
    "sendFeedback",
)

DOES_NOT_APPLY = "does not apply"
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
JAVASCRIPT_CALL = re.compile(r"^([A-Za-z]+)\(")
PYTHON_CALL = re.compile(r"^(?:with\s+|@)?(?P<path>[A-Za-z_][\w.]*)(?:\((?P<args>.*)\))?(?:\s+as\s+\w+)?:?$")


@dataclass(frozen=True)
class Row:
    """One row of the table."""

    javascript: str
    python_cell: str
    notes: str

    @property
    def applies(self) -> bool:
        return self.python_cell != DOES_NOT_APPLY

    @property
    def python(self) -> list[str]:
        """The Python code the row gives (its backticked parts)."""
        return CODE.findall(self.python_cell)


def _cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in CELL_SEPARATOR.split(inner)]


def _section() -> list[str]:
    """The lines of the page from the table's heading to the next heading."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    assert HEADING in lines, f"docs/api.md has no heading {HEADING!r}"
    start = lines.index(HEADING) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return lines[start:end]


def _rows() -> list[Row]:
    lines = [line for line in _section() if line.startswith("|")]
    assert lines and _cells(lines[0]) == ["JavaScript", "Python", "Notes"], "the table's header changed"
    assert set(lines[1].replace("|", "").strip()) <= {"-", " "}, "the table has no separator line"
    rows = []
    for line in lines[2:]:
        cells = _cells(line)
        assert len(cells) == 3, f"a row of the table does not have 3 cells: {line}"
        found = JAVASCRIPT_CALL.match(cells[0].strip("`"))
        assert found is not None, f"the first cell does not name a JavaScript function: {cells[0]}"
        rows.append(Row(found.group(1), cells[1], cells[2]))
    return rows


ROWS = _rows()
IMPLEMENTED = [row for row in ROWS if row.applies]
NOT_APPLYING = [row for row in ROWS if not row.applies]


# -- (a) one row per function of the JavaScript API ----------------------------------------------------


def test_the_table_has_a_row_for_each_javascript_function_and_no_other() -> None:
    names = [row.javascript for row in ROWS]
    missing = [name for name in JAVASCRIPT_API if name not in names]
    extra = [name for name in names if name not in JAVASCRIPT_API]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert missing == [], f"no row for {missing}"
    assert extra == [], f"rows for functions that are not in the JavaScript SDK's list: {extra}"
    assert duplicates == [], f"more than one row for {duplicates}"
    assert names == list(JAVASCRIPT_API), "the rows are not in the order of the JavaScript SDK's list"


# -- (b) every Python name exists, with the parameters shown ------------------------------------------------


def _parse_python(code: str) -> tuple[str, str | None]:
    """``(path, args)`` of one backticked Python form: ``with f(a, b=1) as x:``, ``@f(...)``, ``A.b``."""
    found = PYTHON_CALL.match(code.strip())
    assert found is not None, f"not a Python name or call: {code!r}"
    return found.group("path"), found.group("args")


def _resolve(path: str) -> Any:
    first, *rest = path.split(".")
    assert first in PUBLIC, f"{first!r} is not a public name of sentry_feedback"
    found: Any = getattr(sentry_feedback, first)
    for part in rest:
        assert hasattr(found, part), f"{path!r}: {found!r} has no attribute {part!r}"
        found = getattr(found, part)
    return found


def _split_arguments(args: str) -> list[str]:
    """``args`` split at its top-level commas."""
    parts, depth, current = [], 0, ""
    for char in args:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _literal(node: ast.expr) -> tuple[bool, object]:
    """``(True, value)`` for a literal default other than ``...``; ``(False, None)`` otherwise."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return False, None
    return (value is not Ellipsis), value


def _signature_problems(code: str, function: Any) -> list[str]:
    """How the parameters ``code`` shows differ from those ``function`` takes."""
    path, args = _parse_python(code)
    if args is None:
        return []
    parts = [part for part in _split_arguments(args) if part != "..."]
    documented = ast.parse(f"def f({', '.join(parts)}): pass").body[0]
    assert isinstance(documented, ast.FunctionDef)
    shown = documented.args
    real = inspect.signature(function).parameters
    kinds = inspect.Parameter
    problems: list[str] = []

    positional = [*shown.posonlyargs, *shown.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(shown.defaults)) + list(shown.defaults)
    keyword_only = list(zip(shown.kwonlyargs, shown.kw_defaults, strict=True))
    for arg, default, only_keyword in [
        *((a, d, False) for a, d in zip(positional, defaults, strict=True)),
        *((a, d, True) for a, d in keyword_only),
    ]:
        parameter = real.get(arg.arg)
        if parameter is None or parameter.kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD):
            problems.append(f"{path}() has no parameter {arg.arg!r}")
            continue
        if only_keyword and parameter.kind is not kinds.KEYWORD_ONLY:
            problems.append(f"{path}(): {arg.arg!r} is shown keyword-only but is not")
        elif not only_keyword and default is None and parameter.kind is kinds.KEYWORD_ONLY:
            problems.append(f"{path}(): {arg.arg!r} is shown positional but is keyword-only")
        if default is not None:
            is_literal, value = _literal(default)
            if parameter.default is inspect.Parameter.empty:
                problems.append(f"{path}(): {arg.arg!r} is shown with a default but has none")
            elif is_literal and parameter.default != value:
                problems.append(f"{path}(): {arg.arg}={value!r} is shown, the default is {parameter.default!r}")
        annotation = ast.unparse(arg.annotation) if arg.annotation is not None else None
        if annotation is not None and isinstance(parameter.annotation, str) and annotation != parameter.annotation:
            problems.append(f"{path}(): {arg.arg!r} is shown as {annotation}, it is {parameter.annotation}")
    if shown.vararg is not None and not any(p.kind is kinds.VAR_POSITIONAL for p in real.values()):
        problems.append(f"{path}() takes no *{shown.vararg.arg}")
    if shown.kwarg is not None and not any(p.kind is kinds.VAR_KEYWORD for p in real.values()):
        problems.append(f"{path}() takes no **{shown.kwarg.arg}")
    names = {arg.arg for arg in [*positional, *shown.kwonlyargs]}
    for name, parameter in real.items():
        required = parameter.default is inspect.Parameter.empty
        if required and parameter.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD) and name not in names:
            problems.append(f"{path}(): the required parameter {name!r} is not shown")
    return problems


@pytest.mark.parametrize("row", IMPLEMENTED, ids=[row.javascript for row in IMPLEMENTED])
def test_every_python_name_exists_with_the_parameters_shown(row: Row) -> None:
    assert row.python, f"{row.javascript}: the Python cell names nothing: {row.python_cell!r}"
    problems: list[str] = []
    for code in row.python:
        path, _ = _parse_python(code)
        function = _resolve(path)
        if callable(function):
            problems += _signature_problems(code, function)
    assert problems == []


# -- (c) every function mapped is exercised by a test ---------------------------------------------------------


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _member(module_name: str, name: str) -> object:
    module = _module(module_name)
    return getattr(module, name, None) if module is not None else None


@dataclass(frozen=True)
class _Calls:
    """What one test file calls: ``(module, name)`` for calls of the package's functions, and method names."""

    functions: frozenset[tuple[str, str]]
    methods: frozenset[str]


def _in_package(module: str | None) -> bool:
    return module is not None and (module == "sentry_feedback" or module.startswith("sentry_feedback."))


def _calls_in(tree: ast.Module) -> _Calls:
    modules: dict[str, str] = {}  # local name -> module name, for `import sentry_feedback[.x] [as y]`
    members: dict[str, tuple[str, str]] = {}  # local name -> (module, name), for `from sentry_feedback[.x] import`
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _in_package(alias.name):
                    if alias.asname is not None:
                        modules[alias.asname] = alias.name
                    else:
                        modules["sentry_feedback"] = "sentry_feedback"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _in_package(node.module):
            assert node.module is not None
            for alias in node.names:
                members[alias.asname or alias.name] = (node.module, alias.name)
    functions: set[tuple[str, str]] = set()
    methods: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            methods.add(func.attr)
            if isinstance(func.value, ast.Name):
                if func.value.id in modules:  # sf.flush(...)
                    functions.add((modules[func.value.id], func.attr))
                elif func.value.id in members:  # from sentry_feedback import _context; _context.set_client(...)
                    module, name = members[func.value.id]
                    functions.add((f"{module}.{name}", func.attr))
        elif isinstance(func, ast.Name) and func.id in members:  # from sentry_feedback import flush; flush()
            functions.add(members[func.id])
    return _Calls(frozenset(functions), frozenset(methods))


@cache
def _test_calls() -> dict[str, _Calls]:
    found = {}
    for path in sorted(TESTS.rglob("*.py")):
        if path.name not in NOT_CALLERS:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found[str(path.relative_to(ROOT))] = _calls_in(tree)
    return found


def _callers(path: str) -> list[str]:
    """The test files that call the function ``path`` names (for ``A.b``: any call of a method ``b``)."""
    if "." in path:
        method = path.rsplit(".", 1)[1]
        return [file for file, calls in _test_calls().items() if method in calls.methods]
    target = getattr(sentry_feedback, path)
    wanted = path
    callers = []
    for file, calls in _test_calls().items():
        for module, name in calls.functions:
            if name == wanted and _member(module, name) is target:
                callers.append(file)
                break
    return callers


@pytest.mark.parametrize("row", IMPLEMENTED, ids=[row.javascript for row in IMPLEMENTED])
def test_every_function_mapped_is_called_by_a_test(row: Row) -> None:
    uncalled = sorted({path for path, _ in map(_parse_python, row.python) if not _callers(path)})
    assert uncalled == [], f"{row.javascript}: no test calls {uncalled}"


# -- rows that do not apply ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", NOT_APPLYING, ids=[row.javascript for row in NOT_APPLYING])
def test_a_function_that_does_not_apply_says_why(row: Row) -> None:
    assert row.notes.startswith("Browser only: "), f"{row.javascript}: the notes must start with 'Browser only: '"
    reason = row.notes.removeprefix("Browser only: ")
    assert len(reason.split()) >= 4, f"{row.javascript}: say what it does in the browser: {row.notes!r}"


def test_rows_apply_or_not_plainly() -> None:
    for row in ROWS:
        assert row.applies == (DOES_NOT_APPLY not in row.python_cell), f"{row.javascript}: {row.python_cell!r}"


# -- links ------------------------------------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """The id Python-Markdown's table of contents gives a heading (its default ``slugify``)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


@cache
def _anchors(page: Path) -> frozenset[str]:
    anchors, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (found := re.match(r"^#{1,6}\s+(.*?)\s*#*$", line)):
            anchors.add(_slug(found.group(1)))
    return frozenset(anchors)


def test_the_links_of_the_section_resolve() -> None:
    links = LINK.findall("\n".join(_section()))
    assert any(link.startswith("release-health.md") for link in links)
    broken = []
    for link in links:
        if re.match(r"^[a-z]+://", link):
            continue
        file, _, anchor = link.partition("#")
        page = DOCS / file if file else PAGE
        if not page.is_file() or (anchor and anchor not in _anchors(page)):
            broken.append(link)
    assert broken == []
