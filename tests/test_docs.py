"""Every ```python example in docs/ runs as written (in a fresh interpreter, in a temporary directory), and shows
what it claims.

The convention: an example followed by a ```text block (nothing but blank lines between them) prints exactly that
text, standard output and standard error together, in order (trailing spaces and leading or trailing blank lines
aside). In the text, ``...`` stands for any text within a line (an id, a time, a port); a line holding only
``...`` stands for any number of lines. An example without such a block checks what it claims with ``assert``.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*\n?", re.S | re.M)
ANY_LINES = "..."


def _examples() -> list[tuple[str, str, str | None]]:
    """``(name, code, expected output or None)`` for every python block of the docs."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        blocks = list(BLOCK.finditer(text))
        number = 0
        for index, block in enumerate(blocks):
            if block.group(1) != "python":
                continue
            number += 1
            expected = None
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if (
                following is not None
                and following.group(1) == "text"
                and not text[block.end() : following.start()].strip()
            ):
                expected = following.group(2)
            found.append((f"{page.stem}-{number}", block.group(2), expected))
    return found


EXAMPLES = _examples()


def _normalized(text: str) -> list[str]:
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n").splitlines()


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in line.split("...")) + r"\Z", re.S)


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows (``...`` within a line: any text; alone: any lines)."""
    want, got = _normalized(expected), _normalized(actual)

    def match(w: int, g: int) -> bool:
        while w < len(want):
            if want[w].strip() == ANY_LINES:
                return any(match(w + 1, rest) for rest in range(g, len(got) + 1))
            if g >= len(got) or not _line_pattern(want[w]).match(got[g]):
                return False
            w, g = w + 1, g + 1
        return g == len(got)

    return match(0, 0)


def _asserts(code: str) -> bool:
    return any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code)))


def test_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 30


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("a\nb\n", "a\nb", True),
        ("a\nb", "a\nc", False),
        ("id ...\n", "id 0c3793ef2507470c85520290078d87d1\n", True),
        ("id ... end", "id x end\n", True),
        ("id ... end", "id x\n", False),
        ("first\n...\nlast", "first\nx\ny\nlast", True),
        ("first\n...\nlast", "first\nlast", True),
        ("first\n...\nlast", "first\nx", False),
        ("a", "a\nb", False),
        ("a  \n\n", "a", True),
    ],
)
def test_output_matching(expected: str, actual: str, matches: bool) -> None:
    assert output_matches(expected, actual) is matches


@pytest.mark.parametrize(("name", "code", "expected"), EXAMPLES, ids=[name for name, _, _ in EXAMPLES])
def test_example_runs(name: str, code: str, expected: str | None, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONUNBUFFERED"] = "1"  # standard output and standard error in the order they were written
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}"
    if expected is None:
        assert _asserts(code), f"{name} shows no output (a ```text block after it) and asserts nothing"
    else:
        assert output_matches(expected, result.stdout), (
            f"{name} printed something else than its docs show:\n--- printed\n{result.stdout}--- shown\n{expected}"
        )
