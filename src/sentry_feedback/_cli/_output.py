"""What the command-line tool prints: safe text, tables, colours and a progress bar.

Everything that comes from a server (messages, names, tags) is untrusted: :func:`clean`
turns control characters (ANSI escapes, carriage returns, bidirectional overrides)
into visible escapes before anything reaches the terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TextIO

__all__ = [
    "ProgressBar",
    "Style",
    "clean",
    "display_width",
    "excerpt",
    "format_size",
    "format_time",
    "render_table",
    "truncate",
]

# C0 and C1 controls, DEL, zero-width and line/paragraph separators, bidi embeddings,
# overrides and isolates, and the byte order mark: all of them can hide or rewrite text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_WHITESPACE = re.compile(r"[\t\n\r\v\f\u2028\u2029 ]+")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` made safe for a terminal: every control character shown as an escape (``\\x1b``).

    With ``keep_newlines``, ``\\n`` stays a line break (a ``\\r\\n`` becomes one ``\\n``).
    """
    value = "" if text is None else str(text)
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in value.replace("\r\n", "\n").split("\n"))
    return _UNSAFE.sub(_escape, value)


def excerpt(text: object, width: int = 60) -> str:
    """One safe line of ``text``: runs of whitespace (newlines too) become one space, cut at ``width``."""
    value = "" if text is None else str(text)
    return truncate(clean(_WHITESPACE.sub(" ", value).strip()), width)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal (wide East Asian characters count two, combining marks none)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def truncate(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, ending with ``…`` when it was cut."""
    if width <= 0:
        return ""
    if display_width(text) <= width:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        w = _char_width(char)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"


def format_time(value: datetime | None) -> str:
    """``value`` in UTC as ``YYYY-MM-DD HH:MM:SS`` (``-`` when unknown)."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_size(size: int | None) -> str:
    """A byte count for humans: ``512 B``, ``1.5 KiB``, ``3.2 MiB`` (``?`` when unknown)."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


class Style:
    """ANSI colours, on only for a terminal and never when ``NO_COLOR`` is set (non-empty)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        """The style for ``stream``: colours when it is a terminal and ``NO_COLOR`` is unset or empty."""
        if os.environ.get("NO_COLOR"):
            return cls(False)
        isatty = getattr(stream, "isatty", None)
        try:
            return cls(bool(isatty and isatty()))
        except (OSError, ValueError):
            return cls(False)

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def bold(self, text: str) -> str:
        """``text`` in bold."""
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        """``text`` dimmed."""
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        """``text`` in red."""
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        """``text`` in green."""
        return self._wrap("32", text)

    def yellow(self, text: str) -> str:
        """``text`` in yellow."""
        return self._wrap("33", text)

    def status(self, text: str) -> str:
        """A feedback status, coloured by its value."""
        if text == "resolved":
            return self.green(text)
        if text == "unresolved":
            return self.yellow(text)
        return text


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    style: Style | None = None,
    max_widths: Sequence[int] | None = None,
    colour: Sequence[Callable[[str], str] | None] | None = None,
    total_width: int | None = None,
) -> list[str]:
    """The lines of a table with a header row; the last column takes what room is left.

    Cells must already be safe (see :func:`clean`); each is cut to its column's
    ``max_widths`` entry. ``colour`` gives a function per column applied after padding,
    so escapes never disturb the alignment. ``total_width`` (a terminal's width) cuts
    the last column so that lines do not wrap.
    """
    style = style or Style(False)
    count = len(headers)
    limits = list(max_widths or [10**6] * count)
    cells = [[truncate(str(row[i]), limits[i]) for i in range(count)] for row in rows]
    widths = [max([display_width(headers[i])] + [display_width(row[i]) for row in cells]) for i in range(count)]
    if total_width is not None and count > 1:
        room = total_width - sum(widths[:-1]) - 2 * (count - 1)
        widths[-1] = max(10, min(widths[-1], room))
        cells = [[*row[:-1], truncate(row[-1], widths[-1])] for row in cells]
    painters = list(colour or [None] * count)

    def line(values: Sequence[str], header: bool) -> str:
        parts: list[str] = []
        for i, value in enumerate(values):
            padding = "" if i == count - 1 else " " * max(0, widths[i] - display_width(value))
            painter = style.bold if header else painters[i]
            parts.append((painter(value) if painter is not None else value) + padding)
        return "  ".join(parts).rstrip()

    return [line(headers, True), *(line(row, False) for row in cells)]


def terminal_width(stream: TextIO) -> int | None:
    """The width of the terminal ``stream`` writes to, ``None`` when it is not a terminal."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, OSError, ValueError):
        return None
    return shutil.get_terminal_size((100, 24)).columns


class ProgressBar:
    """A one-line progress bar redrawn in place on a terminal stream (``stderr`` by default).

    >>> bar = ProgressBar(total=10 * 1024 * 1024, label="reading")  # doctest: +SKIP
    >>> bar.advance(1024 * 1024)  # doctest: +SKIP
    >>> bar.finish()  # doctest: +SKIP
    """

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._last_draw = 0.0
        self._last_permille = -1

    def set_label(self, label: str) -> None:
        """Change the text after the bar (say, from "reading" to "uploading") and redraw."""
        self.label = label
        self._draw(force=True)

    def advance(self, amount: int) -> None:
        """Count ``amount`` more bytes done and redraw (at most about 20 times a second)."""
        self.done = min(self.total, self.done + amount)
        self._draw(force=self.done >= self.total)

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        permille = self.done * 1000 // self.total
        if not force and (permille == self._last_permille or now - self._last_draw < 0.05):
            return
        self._last_draw = now
        self._last_permille = permille
        filled = self.width * self.done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        text = f"\r[{bar}] {permille / 10:5.1f}% {format_size(self.done)} / {format_size(self.total)} {self.label}"
        self.stream.write(text + "\x1b[K")
        self.stream.flush()

    def finish(self, label: str | None = None) -> None:
        """Draw the final state and end the line."""
        if label is not None:
            self.label = label
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()
