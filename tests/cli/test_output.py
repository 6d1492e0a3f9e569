"""The output helpers: safe text, tables, colours, the progress bar and safe file names."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from sentry_feedback._cli._browse import safe_filename
from sentry_feedback._cli._output import (
    ProgressBar,
    Style,
    clean,
    display_width,
    excerpt,
    format_size,
    format_time,
    render_table,
    terminal_width,
    truncate,
)


def test_clean_escapes_every_control_character() -> None:
    assert clean("a\x1b[31mb\x07\x00\x7f\x9b") == "a\\x1b[31mb\\x07\\x00\\x7f\\x9b"
    assert clean("rtl \u202e override \u2066 \ufeff") == "rtl \\u202e override \\u2066 \\ufeff"
    assert clean("one\ntwo\r\nthree\r") == "one\\x0atwo\\x0d\\x0athree\\x0d"
    assert clean("one\ntwo\r\nthree", keep_newlines=True) == "one\ntwo\nthree"
    assert clean(None) == ""
    assert clean("ünïcödé 日本") == "ünïcödé 日本"


def test_excerpt_is_one_safe_line() -> None:
    assert excerpt("  hello\n\n\tworld  ") == "hello world"
    assert excerpt("x" * 100, 10) == "x" * 9 + "…"
    assert excerpt("\x1b[2J") == "\\x1b[2J"
    assert excerpt(None) == ""


def test_widths_and_truncation() -> None:
    assert display_width("abc") == 3
    assert display_width("日本") == 4
    assert display_width("e\u0301") == 1
    assert truncate("日本語テキスト", 5) == "日本…"
    assert truncate("abc", 3) == "abc"
    assert truncate("abc", 0) == ""


def test_format_time_and_size() -> None:
    assert format_time(None) == "-"
    assert format_time(datetime(2024, 5, 1, 12, 0, 1)) == "2024-05-01 12:00:01"
    cest = timezone(timedelta(hours=2))
    assert format_time(datetime(2024, 5, 1, 14, 0, 1, tzinfo=cest)) == "2024-05-01 12:00:01"
    assert [format_size(n) for n in (None, 0, 1023, 1536, 5 * 1024**2, 3 * 1024**4)] == [
        "?",
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3072.0 GiB",
    ]


def test_render_table_aligns_and_colours_after_padding() -> None:
    style = Style(True)
    lines = render_table(
        ["A", "B", "C"],
        [["1", "resolved", "last"], ["22", "unresolved", "x" * 50]],
        style=style,
        colour=[None, style.status, None],
        total_width=40,
    )
    assert lines[0] == "\x1b[1mA\x1b[0m   \x1b[1mB\x1b[0m           \x1b[1mC\x1b[0m"
    assert lines[1] == "1   \x1b[32mresolved\x1b[0m    last"
    assert lines[2].endswith("x" * 15 + "…")
    plain = render_table(["ID", "MSG"], [["日本", "ok"]], max_widths=[3, 10])
    assert plain == ["ID   MSG", "日…  ok"]


def test_style_follows_the_stream_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    class Broken(io.StringIO):
        def isatty(self) -> bool:
            raise ValueError("closed")

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Style.for_stream(Tty()).enabled
    assert not Style.for_stream(io.StringIO()).enabled
    assert not Style.for_stream(Broken()).enabled
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Style.for_stream(Tty()).enabled
    monkeypatch.setenv("NO_COLOR", "")
    assert Style.for_stream(Tty()).enabled
    off = Style(False)
    assert off.red("x") == off.bold("x") == "x" and off.status("resolved") == "resolved"
    on = Style(True)
    assert on.dim("x") == "\x1b[2mx\x1b[0m" and on.yellow("x") == "\x1b[33mx\x1b[0m" and on.red("") == ""
    assert on.status("unresolved") == "\x1b[33munresolved\x1b[0m" and on.status("other") == "other"
    assert terminal_width(io.StringIO()) is None
    assert terminal_width(Tty()) is not None
    assert terminal_width(Broken()) is None


def test_progress_bar() -> None:
    stream = io.StringIO()
    bar = ProgressBar(4 * 1024 * 1024, "reading", stream=stream, width=10)
    for _ in range(4):
        bar.advance(1024 * 1024)
    bar.set_label("sending")
    bar.finish("sent")
    text = stream.getvalue()
    assert "\r[##########] 100.0% 4.0 MiB / 4.0 MiB sent" in text
    assert text.endswith("\n")
    quiet = io.StringIO()
    empty = ProgressBar(0, "nothing", stream=quiet)
    empty.finish()
    assert "0.0%" in quiet.getvalue() and quiet.getvalue().endswith("\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/abs/path.txt", "path.txt"),
        ("..", "fallback"),
        ("", "fallback"),
        (".hidden", "hidden"),
        ("a\x1b[2Jb.txt", "a_[2Jb.txt"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ('what?<>:"|*.txt', "what_______.txt"),
        ("dir/", "fallback"),
        ("\u202etxt.exe", "_txt.exe"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name, "fallback") == expected


def test_safe_filename_keeps_long_names_short() -> None:
    long = safe_filename("é" * 300 + ".log", "x")
    assert len(long.encode("utf-8")) <= 200 and long.endswith(".log")
    assert len(safe_filename("x" * 500, "y")) == 200
