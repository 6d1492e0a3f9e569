"""Exceptions and stacks turned into Sentry ``exception`` / ``stacktrace`` payloads (``_stacktrace``)."""

from __future__ import annotations

import builtins
import functools
import importlib
import json
import math
import os
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from sentry_feedback._stacktrace import (
    MAX_EXCEPTIONS,
    StackOptions,
    exceptions_from_error,
    is_in_app,
    serialize_value,
    stacktrace_from_frame,
)
from sentry_feedback.testing import normalize_with_relay

needs_groups = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are builtin from 3.11")

PAYMENT = '''\
"""Payments: the module that raises."""
import json


class PaymentError(Exception):
    """The card was declined."""


def charge(amount):
    card = {"number": "4111", "cvc": None}
    attempts = 3
    if amount > 100:
        raise PaymentError(f"declined: {amount}")
    return json.loads("{")


def refund(amount):
    return int("not a number")
# padding line 1
# padding line 2
'''

CHECKOUT = '''\
"""Checkout: calls into payment."""
from shopapp import payment


def checkout(total):
    items = ["book", "pen"]
    return payment.charge(total)


def checkout_wrapped(total):
    try:
        return payment.charge(total)
    except payment.PaymentError as exc:
        raise RuntimeError("checkout failed") from exc


def checkout_implicit(total):
    try:
        return payment.charge(total)
    except payment.PaymentError:
        raise LookupError("no fallback processor")


def checkout_silent(total):
    try:
        return payment.charge(total)
    except payment.PaymentError:
        raise RuntimeError("checkout failed") from None


class Cart:
    def pay(self, total):
        def inner():
            return checkout(total)

        return inner()
'''


def _check(values: list[dict[str, Any]]) -> dict[str, Any]:
    """Sentry's own normalizer accepts the exception values unchanged and unflagged."""
    event = {"event_id": "a" * 32, "timestamp": 1.0, "platform": "python", "level": "error"}
    normalized = normalize_with_relay({**event, "exception": {"values": values}})
    assert len(normalized["exception"]["values"]) == len(values)
    return normalized


def _check_stack(stacktrace: dict[str, Any]) -> None:
    event = {"event_id": "a" * 32, "timestamp": 1.0, "platform": "python", "level": "error"}
    normalize_with_relay({**event, "threads": {"values": [{"id": 1, "current": True, "stacktrace": stacktrace}]}})


def _catch(func: Callable[[], object]) -> BaseException:
    try:
        func()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def _raise(exc: BaseException) -> None:
    raise exc


def _line_of(source: str, needle: str) -> int:
    matches = [i for i, line in enumerate(source.splitlines(), 1) if needle in line]
    assert len(matches) == 1, (needle, matches)
    return matches[0]


@pytest.fixture
def shopapp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    package = tmp_path / "shopapp"
    package.mkdir()
    (package / "__init__.py").write_text('"""A shop."""\n')
    (package / "payment.py").write_text(PAYMENT)
    (package / "checkout.py").write_text(CHECKOUT)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        checkout = importlib.import_module("shopapp.checkout")
        payment = importlib.import_module("shopapp.payment")
        yield types.SimpleNamespace(checkout=checkout, payment=payment, root=package)
    finally:
        for name in [name for name in sys.modules if name == "shopapp" or name.startswith("shopapp.")]:
            del sys.modules[name]


# --- frames ------------------------------------------------------------------------------


def test_frames_run_oldest_to_newest_with_module_function_line_and_context(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.checkout(500))
    values = exceptions_from_error(error)
    _check(values)

    assert len(values) == 1
    (value,) = values
    assert value["type"] == "PaymentError"
    assert value["module"] == "shopapp.payment"
    assert value["value"] == "declined: 500"
    assert value["mechanism"] == {"type": "generic", "handled": True, "exception_id": 0}

    frames = value["stacktrace"]["frames"]
    # The traceback starts where the exception was caught (_catch's try block).
    assert [f["function"] for f in frames] == [
        "_catch",
        "<lambda>",
        "checkout",
        "charge",
    ]
    assert [f["module"] for f in frames] == [__name__, __name__, "shopapp.checkout", "shopapp.payment"]

    outer, _, middle, newest = frames
    assert outer["abs_path"] == os.path.abspath(__file__)
    assert outer["filename"] == os.path.basename(__file__)

    assert middle["filename"] == "shopapp/checkout.py"
    assert middle["abs_path"] == str(shopapp.root / "checkout.py")
    assert middle["lineno"] == _line_of(CHECKOUT, "def checkout(total):") + 2
    assert middle["context_line"] == "    return payment.charge(total)"

    raise_line = _line_of(PAYMENT, "raise PaymentError")
    assert newest["filename"] == "shopapp/payment.py"
    assert newest["abs_path"] == str(shopapp.root / "payment.py")
    assert newest["lineno"] == raise_line
    assert newest["context_line"] == '        raise PaymentError(f"declined: {amount}")'
    lines = PAYMENT.splitlines()
    assert newest["pre_context"] == lines[raise_line - 6 : raise_line - 1]
    assert newest["post_context"] == lines[raise_line : raise_line + 5]
    assert len(newest["pre_context"]) == 5 and len(newest["post_context"]) == 5
    assert all(not line.endswith("\n") for line in newest["pre_context"] + newest["post_context"])

    assert all(f["in_app"] for f in frames)
    assert newest["vars"] == {"amount": 500, "card": {"number": "4111", "cvc": None}, "attempts": 3}
    assert middle["vars"] == {"total": 500, "items": ["book", "pen"]}


def test_context_is_clipped_at_the_start_and_end_of_the_file(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.payment.refund(1))
    newest = exceptions_from_error(error, options=StackOptions(context_lines=10))[-1]["stacktrace"]["frames"][-1]
    line = _line_of(PAYMENT, 'int("not a number")')
    assert newest["context_line"] == '    return int("not a number")'
    assert len(newest["pre_context"]) == 10
    assert newest["post_context"] == ["# padding line 1", "# padding line 2"]
    assert newest["lineno"] == line


def test_qualified_function_names(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.Cart().pay(500))
    values = exceptions_from_error(error)
    _check(values)
    functions = [f["function"] for f in values[-1]["stacktrace"]["frames"]]
    if sys.version_info >= (3, 11):
        assert functions[-4:] == ["Cart.pay", "inner", "checkout", "charge"]
    else:
        assert functions[-4:] == ["pay", "inner", "checkout", "charge"]


def test_stdlib_frames_are_not_in_app(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.checkout(5))  # json.loads("{") fails inside the json package
    values = exceptions_from_error(error)
    _check(values)
    value = values[-1]
    assert value["type"] == "JSONDecodeError"
    assert value["module"] == "json.decoder"
    frames = value["stacktrace"]["frames"]
    by_module = {f["module"]: f for f in frames}
    assert by_module["shopapp.payment"]["in_app"] is True
    assert by_module["shopapp.checkout"]["in_app"] is True
    assert by_module["json"]["in_app"] is False
    assert by_module["json"]["filename"] == "json/__init__.py"
    assert by_module["json"]["abs_path"] == os.path.abspath(json.__file__)
    assert by_module["json.decoder"]["in_app"] is False
    assert by_module["json.decoder"]["filename"] == "json/decoder.py"
    assert frames[-1]["module"] == "json.decoder"  # raised inside the stdlib: newest frame last
    # the stdlib frame still has its source and locals
    assert by_module["json"]["context_line"].strip()
    assert by_module["json"]["vars"]["s"] == "{"


def test_builtin_exception_types_have_no_module(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.payment.refund(1))
    values = exceptions_from_error(error)
    _check(values)
    assert values[-1]["type"] == "ValueError"
    assert "module" not in values[-1]
    assert values[-1]["value"] == "invalid literal for int() with base 10: 'not a number'"


def test_in_app_include_and_exclude_override_the_defaults(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.checkout(5))

    def in_app(options: StackOptions) -> dict[str, bool]:
        values = exceptions_from_error(error, options=options)
        _check(values)
        return {f["module"]: f["in_app"] for f in values[-1]["stacktrace"]["frames"]}

    excluded = in_app(StackOptions(in_app_exclude=("shopapp",)))
    assert excluded["shopapp.payment"] is False and excluded["shopapp.checkout"] is False
    assert excluded[__name__] is True

    only_payment = in_app(StackOptions(in_app_exclude=("shopapp.payment",)))
    assert only_payment["shopapp.payment"] is False and only_payment["shopapp.checkout"] is True

    included = in_app(StackOptions(in_app_include=("json",)))
    assert included["json"] is True and included["json.decoder"] is True

    both = in_app(StackOptions(in_app_include=("shopapp.payment",), in_app_exclude=("shopapp",)))
    assert both["shopapp.payment"] is True  # include wins over exclude
    assert both["shopapp.checkout"] is False

    not_a_prefix = in_app(StackOptions(in_app_exclude=("shop", "shopapp.pay")))
    assert not_a_prefix["shopapp.payment"] is True and not_a_prefix["shopapp.checkout"] is True


def test_is_in_app() -> None:
    stdlib = sysconfig.get_paths()["stdlib"]
    default = StackOptions()
    assert is_in_app("json.decoder", os.path.join(stdlib, "json", "decoder.py"), default) is False
    assert is_in_app("requests.api", "/srv/venv/lib/python3.12/site-packages/requests/api.py", default) is False
    assert is_in_app("yaml", "/usr/lib/python3/dist-packages/yaml/__init__.py", default) is False
    assert is_in_app("importlib._bootstrap", "<frozen importlib._bootstrap>", default) is False
    assert is_in_app("myapp.views", "/srv/myapp/views.py", default) is True
    assert is_in_app("site_packages_helper", "/srv/site-packages-helper/x.py", default) is True
    assert is_in_app(None, None, default) is True
    assert is_in_app("__main__", "<stdin>", default) is True

    include = StackOptions(in_app_include=("myapp",))
    assert is_in_app("myapp", "/venv/lib/site-packages/myapp/__init__.py", include) is True
    assert is_in_app("myapp.views", "/venv/lib/site-packages/myapp/views.py", include) is True
    assert is_in_app("myapplication", "/venv/lib/site-packages/myapplication.py", include) is False

    exclude = StackOptions(in_app_exclude=("myapp",))
    assert is_in_app("myapp.views", "/srv/myapp/views.py", exclude) is False
    assert is_in_app("myapplication", "/srv/myapplication.py", exclude) is True
    assert is_in_app(None, "/srv/myapp/views.py", exclude) is True

    both = StackOptions(in_app_include=("myapp.views",), in_app_exclude=("myapp",))
    assert is_in_app("myapp.views.detail", "/srv/myapp/views/detail.py", both) is True
    assert is_in_app("myapp.models", "/srv/myapp/models.py", both) is False


def test_source_context_and_locals_can_be_turned_off(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.checkout(500))

    values = exceptions_from_error(error, options=StackOptions(include_local_variables=False))
    _check(values)
    frames = values[-1]["stacktrace"]["frames"]
    assert all("vars" not in f for f in frames)
    assert all("context_line" in f for f in frames)

    values = exceptions_from_error(error, options=StackOptions(include_source_context=False))
    _check(values)
    frames = values[-1]["stacktrace"]["frames"]
    assert all(not {"pre_context", "context_line", "post_context"} & f.keys() for f in frames)
    assert all("vars" in f and "lineno" in f for f in frames)

    values = exceptions_from_error(error, options=StackOptions(context_lines=2))
    newest = values[-1]["stacktrace"]["frames"][-1]
    assert len(newest["pre_context"]) == 2 and len(newest["post_context"]) == 2

    values = exceptions_from_error(error, options=StackOptions(context_lines=0))
    _check(values)
    newest = values[-1]["stacktrace"]["frames"][-1]
    assert newest["pre_context"] == [] and newest["post_context"] == []
    assert newest["context_line"] == '        raise PaymentError(f"declined: {amount}")'


def test_missing_source_files_and_exec_code_give_frames_without_context(shopapp: types.SimpleNamespace) -> None:
    (shopapp.root / "payment.py").unlink()  # imported already; never read by linecache yet
    error = _catch(lambda: shopapp.payment.charge(500))
    values = exceptions_from_error(error)
    _check(values)
    newest = values[-1]["stacktrace"]["frames"][-1]
    assert newest["filename"] == "shopapp/payment.py"
    assert newest["lineno"] == _line_of(PAYMENT, "raise PaymentError")
    assert "context_line" not in newest and "pre_context" not in newest

    namespace: dict[str, Any] = {"__name__": "generated"}
    exec(compile("def boom():\n    raise KeyError('k')\n", "<string>", "exec"), namespace)
    error = _catch(namespace["boom"])
    values = exceptions_from_error(error)
    _check(values)
    newest = values[-1]["stacktrace"]["frames"][-1]
    assert newest["filename"] == "<string>" and newest["abs_path"] == "<string>"
    assert newest["module"] == "generated" and newest["function"] == "boom" and newest["lineno"] == 2
    assert newest["in_app"] is True
    assert "context_line" not in newest


def test_very_long_source_lines_are_cut(shopapp: types.SimpleNamespace) -> None:
    long_line = "def squash():  " + "x = 1; " * 1000 + "raise ValueError('minified')\n"
    (shopapp.root / "minified.py").write_text("# generated\n" + long_line + "# end\n")
    module = importlib.import_module("shopapp.minified")
    values = exceptions_from_error(_catch(module.squash))
    _check(values)
    newest = values[-1]["stacktrace"]["frames"][-1]
    assert newest["filename"] == "shopapp/minified.py" and newest["lineno"] == 2
    assert len(newest["context_line"]) == 1024 and newest["context_line"].endswith("...")
    assert newest["pre_context"] == ["# generated"] and newest["post_context"] == ["# end"]


def test_unraised_exception_has_no_stacktrace() -> None:
    values = exceptions_from_error(ValueError("never raised"), handled=False, mechanism_type="logging")
    _check(values)
    assert values == [
        {
            "type": "ValueError",
            "value": "never raised",
            "mechanism": {"type": "logging", "handled": False, "exception_id": 0},
        }
    ]


def test_long_stacks_keep_both_ends() -> None:
    def recurse(n: int) -> None:
        if n == 0:
            raise RecursionError("bottom")
        recurse(n - 1)

    error = _catch(lambda: recurse(60))
    full = exceptions_from_error(error)[-1]["stacktrace"]["frames"]
    assert len(full) == 63  # _catch, the lambda, 61 recursive calls

    values = exceptions_from_error(error, options=StackOptions(max_frames=10))
    _check(values)
    frames = values[-1]["stacktrace"]["frames"]
    assert len(frames) == 10
    assert frames[:5] == full[:5]
    assert frames[5:] == full[-5:]
    assert frames[0]["function"] == "_catch"
    assert [f["function"] for f in frames[2:]] == ["recurse"] * 8
    assert frames[-1]["lineno"] == full[-1]["lineno"]

    one = exceptions_from_error(error, options=StackOptions(max_frames=1))[-1]["stacktrace"]["frames"]
    assert one == full[-1:]


# --- chains and groups -------------------------------------------------------------------


def test_explicit_cause(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.checkout_wrapped(500))
    values = exceptions_from_error(error, handled=False, mechanism_type="excepthook")
    _check(values)
    assert [v["type"] for v in values] == ["PaymentError", "RuntimeError"]
    assert values[-1]["mechanism"] == {"type": "excepthook", "handled": False, "exception_id": 0}
    assert values[0]["mechanism"] == {
        "type": "chained",
        "handled": False,
        "exception_id": 1,
        "parent_id": 0,
        "source": "__cause__",
    }
    assert values[0]["stacktrace"]["frames"][-1]["function"] == "charge"
    assert values[-1]["stacktrace"]["frames"][-1]["function"] == "checkout_wrapped"
    assert values[-1]["stacktrace"]["frames"][-1]["context_line"].strip() == (
        'raise RuntimeError("checkout failed") from exc'
    )


def test_implicit_context(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.checkout_implicit(500))
    values = exceptions_from_error(error)
    _check(values)
    assert [v["type"] for v in values] == ["PaymentError", "LookupError"]
    assert values[0]["mechanism"]["source"] == "__context__"
    assert values[0]["mechanism"]["parent_id"] == 0
    assert values[0]["mechanism"]["exception_id"] == 1


def test_from_none_suppresses_the_context(shopapp: types.SimpleNamespace) -> None:
    error = _catch(lambda: shopapp.checkout.checkout_silent(500))
    assert error.__context__ is not None
    values = exceptions_from_error(error)
    _check(values)
    assert [v["type"] for v in values] == ["RuntimeError"]


def test_cause_wins_over_context_and_chains_are_walked_to_the_end() -> None:
    def run() -> None:
        try:
            try:
                raise KeyError("first")
            except KeyError as first:
                raise ValueError("second") from first
        except ValueError:
            try:
                {}["missing"]
            except KeyError:
                raise TypeError("fourth") from ZeroDivisionError("explicit")

    error = _catch(run)
    values = exceptions_from_error(error)
    _check(values)
    # TypeError -> (cause) ZeroDivisionError, which has no links; the KeyError context is not shown.
    assert [v["type"] for v in values] == ["ZeroDivisionError", "TypeError"]
    assert "stacktrace" not in values[0]

    def run_implicit() -> None:
        try:
            try:
                raise KeyError("first")
            except KeyError as first:
                raise ValueError("second") from first
        except ValueError:
            raise TypeError("third")  # noqa: B904

    values = exceptions_from_error(_catch(run_implicit))
    _check(values)
    assert [v["type"] for v in values] == ["KeyError", "ValueError", "TypeError"]
    assert [v["mechanism"].get("source") for v in values] == ["__cause__", "__context__", None]
    assert [v["mechanism"]["exception_id"] for v in values] == [2, 1, 0]
    assert [v["mechanism"].get("parent_id") for v in values] == [1, 0, None]


def test_cycles_terminate() -> None:
    first, second = ValueError("one"), TypeError("two")
    first.__context__ = second
    second.__context__ = first
    values = exceptions_from_error(first)
    _check(values)
    assert [v["type"] for v in values] == ["TypeError", "ValueError"]

    selfish = RuntimeError("me")
    selfish.__cause__ = selfish
    values = exceptions_from_error(selfish)
    _check(values)
    assert [v["value"] for v in values] == ["me"]


def test_huge_chains_are_capped() -> None:
    head = current = ValueError("0")
    for i in range(1, 500):
        linked = ValueError(str(i))
        current.__context__ = linked
        current = linked
    values = exceptions_from_error(head)
    _check(values)
    assert len(values) == MAX_EXCEPTIONS == 100
    assert values[-1]["value"] == "0"
    assert values[0]["value"] == "99"


@needs_groups
def test_exception_groups_with_nested_groups() -> None:
    members = [_catch(functools.partial(_raise, exc)) for exc in (ValueError("a"), TypeError("b"), KeyError("c"))]
    group_cls = builtins.ExceptionGroup

    def run() -> None:
        try:
            raise ZeroDivisionError("while handling")
        except ZeroDivisionError:
            raise group_cls("outer", [members[0], group_cls("inner", [members[1], members[2]])])  # noqa: B904

    error = _catch(run)
    values = exceptions_from_error(error)
    _check(values)
    # Depth-first ids: outer 0, its context 1, then members in order; output is reversed.
    assert [(v["type"], v["value"]) for v in values] == [
        ("KeyError", "'c'"),
        ("TypeError", "b"),
        ("ExceptionGroup", "inner (2 sub-exceptions)"),
        ("ValueError", "a"),
        ("ZeroDivisionError", "while handling"),
        ("ExceptionGroup", "outer (2 sub-exceptions)"),
    ]
    assert [v["mechanism"] for v in values] == [
        {"type": "chained", "handled": True, "exception_id": 5, "parent_id": 3, "source": "exceptions[1]"},
        {"type": "chained", "handled": True, "exception_id": 4, "parent_id": 3, "source": "exceptions[0]"},
        {
            "type": "chained",
            "handled": True,
            "exception_id": 3,
            "parent_id": 0,
            "source": "exceptions[1]",
            "is_exception_group": True,
        },
        {"type": "chained", "handled": True, "exception_id": 2, "parent_id": 0, "source": "exceptions[0]"},
        {"type": "chained", "handled": True, "exception_id": 1, "parent_id": 0, "source": "__context__"},
        {"type": "generic", "handled": True, "exception_id": 0, "is_exception_group": True},
    ]
    assert "stacktrace" not in values[2]  # the inner group was never raised on its own
    assert values[3]["stacktrace"]["frames"][-1]["function"] == "_raise"
    assert values[-1]["stacktrace"]["frames"][-1]["function"] == "run"


@needs_groups
def test_a_member_seen_twice_is_sent_once() -> None:
    shared = ValueError("shared")
    group = builtins.ExceptionGroup("twice", [shared, shared])
    values = exceptions_from_error(group)
    _check(values)
    assert [v["type"] for v in values] == ["ValueError", "ExceptionGroup"]


def test_exception_values_never_break_capture() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    values = exceptions_from_error(_catch(lambda: _raise(Unprintable())))
    _check(values)
    assert values[-1]["value"] == "<exception str() failed>"
    assert values[-1]["type"] == "test_exception_values_never_break_capture.<locals>.Unprintable"
    assert values[-1]["module"] == __name__

    noted = ValueError("bad input")
    if sys.version_info >= (3, 11):
        noted.add_note("while parsing line 3")
    values = exceptions_from_error(noted)
    _check(values)
    expected = "bad input\nwhile parsing line 3" if sys.version_info >= (3, 11) else "bad input"
    assert values[-1]["value"] == expected

    values = exceptions_from_error(ValueError("x" * 100_000))
    _check(values)
    assert len(values[-1]["value"]) <= 8192 and values[-1]["value"].endswith("...")


# --- local variables -----------------------------------------------------------------------


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class EndlessRepr:
    def __repr__(self) -> str:
        return repr(self)  # RecursionError


class Color(IntEnum):
    RED = 1


def test_locals_are_bounded_and_safe() -> None:
    def explode() -> None:
        huge = "x" * 10_000_000
        nested: dict[str, Any] = {}
        level = nested
        for i in range(10):
            level["d"] = {"level": i}
            level = level["d"]
        broken = BrokenRepr()
        endless = EndlessRepr()
        selfref: list[Any] = [1, 2]
        selfref.append(selfref)
        nan = math.nan
        inf = -math.inf
        big = 2**10_000
        blob = b"\x00\x01abc" * 1000
        many = list(range(1000))
        color = Color.RED
        _ = (huge, broken, endless, nan, inf, big, blob, many, color)
        raise ValueError("locals")

    error = _catch(explode)
    values = exceptions_from_error(error)
    _check(values)
    local_vars = values[-1]["stacktrace"]["frames"][-1]["vars"]

    assert len(local_vars["huge"]) == 1024 and local_vars["huge"].endswith("...")
    assert local_vars["nested"] == {"d": {"level": 0, "d": {"level": 1, "d": "<dict with 2 items>"}}}
    assert local_vars["broken"] == "<BrokenRepr object (repr failed: RuntimeError)>"
    assert local_vars["endless"] == "<EndlessRepr object (repr failed: RecursionError)>"
    assert local_vars["selfref"] == [1, 2, "<cycle>"]
    assert local_vars["nan"] == "nan"
    assert local_vars["inf"] == "-inf"
    assert local_vars["big"] == "<int of 10001 bits>"
    assert local_vars["blob"].startswith("b'\\x00\\x01abc") and len(local_vars["blob"]) == 1024
    assert local_vars["many"] == list(range(50))
    assert local_vars["color"] == "<Color.RED: 1>"
    assert json.dumps(local_vars, allow_nan=False)


def test_module_level_frames_leave_out_dunder_names() -> None:
    namespace: dict[str, Any] = {"__name__": "generated_module", "__builtins__": __builtins__}
    code = compile("visible = 1\n__hidden__ = 2\nraise KeyError('k')\n", "<generated>", "exec")
    error = _catch(lambda: exec(code, namespace))
    values = exceptions_from_error(error)
    _check(values)
    newest = values[-1]["stacktrace"]["frames"][-1]
    assert newest["function"] == "<module>" and newest["module"] == "generated_module"
    assert newest["vars"] == {"visible": 1}


def test_serialize_value() -> None:
    assert serialize_value(None) is None
    assert serialize_value(True) is True
    assert serialize_value(7) == 7
    assert serialize_value(1.5) == 1.5
    assert serialize_value(math.inf) == "inf"
    assert serialize_value(math.nan) == "nan"
    assert serialize_value("abc") == "abc"
    assert serialize_value("abcdefghij", max_length=5) == "ab..."
    assert serialize_value(b"abc") == "b'abc'"
    assert serialize_value(bytearray(b"abc")) == "bytearray(b'abc')"
    assert serialize_value(b"a" * 100, max_length=10) == "b'aaaaa..."
    assert serialize_value((1, "a")) == [1, "a"]
    assert serialize_value({3}) == [3]
    assert serialize_value(frozenset()) == []
    assert serialize_value({1: "a", None: "b", (1, 2): "c", 2.5: "d"}) == {
        "1": "a",
        "None": "b",
        "(1, 2)": "c",
        "2.5": "d",
    }
    assert serialize_value([[[[1]]]], depth=2) == [[("<list with 1 items>")]]
    assert serialize_value([1], depth=0) == "<list with 1 items>"
    assert serialize_value(list(range(10)), max_items=3) == [0, 1, 2]
    assert serialize_value(dict.fromkeys("abcdef", 0), max_items=2) == {"a": 0, "b": 0}
    assert serialize_value(2**5000) == "<int of 5001 bits>"
    assert serialize_value(2**3999) == 2**3999

    shared = [1]
    assert serialize_value([shared, shared]) == [[1], [1]]  # shared is not a cycle

    class Weird(dict[str, Any]):
        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("no")

    assert serialize_value(Weird(a=1)) == {"a": 1}  # read through dict itself

    class BadList(list[int]):
        def __iter__(self) -> Iterator[int]:
            raise RuntimeError("no")

    assert serialize_value(BadList([1])) == "<BadList (could not be read)>"

    class HugeRepr:
        def __repr__(self) -> str:
            return "y" * 50_000

    assert len(serialize_value(HugeRepr())) == 1024


# --- stacks for attach_stacktrace ----------------------------------------------------------


def test_stacktrace_from_the_current_frame() -> None:
    line = sys._getframe().f_lineno + 1
    stacktrace = stacktrace_from_frame(sys._getframe())
    _check_stack(stacktrace)
    frames = stacktrace["frames"]
    assert frames[-1]["function"] == "test_stacktrace_from_the_current_frame"
    assert frames[-1]["module"] == __name__
    assert frames[-1]["lineno"] == line
    assert frames[-1]["context_line"].strip() == "stacktrace = stacktrace_from_frame(sys._getframe())"
    assert frames[-1]["in_app"] is True
    assert not any(f.get("module", "").startswith("sentry_feedback") for f in frames)
    assert any(f.get("module", "").startswith("_pytest") and f["in_app"] is False for f in frames)
    assert len(frames) > 5  # pytest's own frames, oldest first
    assert frames[0]["function"] != frames[-1]["function"]


def test_stacktrace_leaves_out_sdk_frames() -> None:
    namespace: dict[str, Any] = {"__name__": "sentry_feedback._fake_for_tests"}
    exec("def call(callback):\n    return callback()\n", namespace)

    def capture(skip: bool) -> dict[str, Any]:
        return namespace["call"](lambda: stacktrace_from_frame(sys._getframe(), skip_sdk_frames=skip))  # type: ignore[no-any-return]

    skipped = capture(True)
    _check_stack(skipped)
    assert "sentry_feedback._fake_for_tests" not in [f.get("module") for f in skipped["frames"]]
    kept = capture(False)
    _check_stack(kept)
    assert [f.get("module") for f in kept["frames"]][-2] == "sentry_feedback._fake_for_tests"
    assert len(kept["frames"]) == len(skipped["frames"]) + 1

    assert stacktrace_from_frame(None) == {"frames": []}
    limited = stacktrace_from_frame(sys._getframe(), options=StackOptions(max_frames=2, include_local_variables=False))
    assert len(limited["frames"]) == 2
    assert limited["frames"][-1]["function"] == "test_stacktrace_leaves_out_sdk_frames"
    assert "vars" not in limited["frames"][-1]


# --- hostile exceptions, frames and values ---------------------------------------------------
# Whatever an exception, a frame or a value does when read, capture goes on; only Ctrl-C
# (KeyboardInterrupt) goes through, since it belongs to the program.


class Raises:
    """A class attribute that raises ``exc_type`` when it is read on an instance or the class."""

    def __init__(self, exc_type: type[BaseException]) -> None:
        self.exc_type = exc_type

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        raise self.exc_type("read")


def hostile_exception(attribute: str, exc_type: type[BaseException]) -> BaseException:
    """A ``ValueError("boom")`` (an ``ExceptionGroup`` for ``exceptions``) whose ``attribute`` raises when read."""
    if attribute == "exceptions":
        base: type[BaseException] = builtins.ExceptionGroup
        cls = type("HostileGroup", (base,), {attribute: Raises(exc_type)})
        return cls("boom", [ValueError("member")])
    if attribute == "__str__":

        def unprintable(self: BaseException) -> str:
            raise exc_type("str")

        return type("Hostile", (ValueError,), {"__str__": unprintable})("boom")
    return type("Hostile", (ValueError,), {attribute: Raises(exc_type)})("boom")


HOSTILE_ATTRIBUTES = [
    "__cause__",
    "__context__",
    "__notes__",
    "__str__",
    pytest.param("exceptions", marks=needs_groups),
]


@pytest.mark.parametrize("attribute", HOSTILE_ATTRIBUTES)
def test_an_exception_whose_attribute_raises_is_still_captured(attribute: str) -> None:
    values = exceptions_from_error(hostile_exception(attribute, RuntimeError))
    _check(values)
    assert len(values) == 1  # no chain and no members could be read
    expected = {"__str__": "<exception str() failed>", "exceptions": "boom (1 sub-exception)"}.get(attribute, "boom")
    assert values[0]["value"] == expected
    assert values[0]["type"] == ("HostileGroup" if attribute == "exceptions" else "Hostile")


@pytest.mark.parametrize("attribute", HOSTILE_ATTRIBUTES)
def test_ctrl_c_while_reading_an_exception_goes_through(attribute: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        exceptions_from_error(hostile_exception(attribute, KeyboardInterrupt))


def _meta(**answers: object) -> type:
    """A metaclass whose classes answer ``answers`` for those attributes (``__qualname__``, ``__name__``)."""

    def getattribute(cls: type, name: str) -> object:
        return answers[name] if name in answers else type.__getattribute__(cls, name)

    return type("Meta", (type,), {"__getattribute__": getattribute})


def test_an_exception_class_without_a_usable_name() -> None:
    odd = _meta(__qualname__=5)("Odd", (ValueError,), {})
    assert exceptions_from_error(odd("x"))[0]["type"] == "Odd"
    nameless = _meta(__qualname__="", __name__=7)("Odd", (ValueError,), {})
    assert exceptions_from_error(nameless("x"))[0]["type"] == "Exception"


def _raised_in(code: str, filename: str, namespace: dict[Any, Any], local: Any = None) -> BaseException:
    """The exception that ``code`` (compiled as ``filename``) raises when run in ``namespace``."""
    compiled = compile(code, filename, "exec")
    return _catch(lambda: exec(compiled, namespace, local if local is not None else namespace))


def test_frames_of_odd_code_and_namespaces(tmp_path: Path) -> None:
    options = StackOptions(include_local_variables=True)
    # A module namespace with a non-string key: the key is shown by its repr.
    error = _raised_in("x = 1\nraise ValueError('odd')", "<odd>", {"__name__": "odd", 1: "one"})
    frame = exceptions_from_error(error, options=options)[-1]["stacktrace"]["frames"][-1]
    assert frame["filename"] == frame["abs_path"] == "<odd>" and frame["module"] == "odd"
    assert frame["vars"] == {"1": "one", "x": 1}
    # Code with no file name, run without a module name.
    error = _raised_in("raise ValueError('nameless')", "", {"__name__": 3})
    frame = exceptions_from_error(error, options=options)[-1]["stacktrace"]["frames"][-1]
    assert frame["filename"] == frame["abs_path"] == "<unknown>" and "module" not in frame
    # Stack traces of no frames at all are left out (Sentry rejects an empty list).
    assert "stacktrace" not in exceptions_from_error(error, options=StackOptions(max_frames=0))[-1]


class HostileLocals(dict):  # type: ignore[type-arg]
    """A local namespace that cannot be listed."""

    def __init__(self, exc_type: type[BaseException]) -> None:
        super().__init__()
        self.exc_type = exc_type

    def items(self) -> Any:
        raise self.exc_type("items")


def test_locals_that_cannot_be_listed() -> None:
    options = StackOptions(include_local_variables=True)
    error = _raised_in("raise ValueError('x')", "<hostile>", {"__name__": "hostile"}, HostileLocals(RuntimeError))
    frame = exceptions_from_error(error, options=options)[-1]["stacktrace"]["frames"][-1]
    assert frame["function"] == "<module>" and "vars" not in frame
    error = _raised_in("raise ValueError('x')", "<hostile>", {"__name__": "hostile"}, HostileLocals(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        exceptions_from_error(error, options=options)


class SourceLoader:
    """A module loader whose ``get_source`` raises ``exc_type``."""

    def __init__(self, exc_type: type[BaseException]) -> None:
        self.exc_type = exc_type

    def get_source(self, name: str) -> str:
        raise self.exc_type("no source")


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_a_loader_that_raises_for_the_source(exc_type: type[BaseException]) -> None:
    name = f"virtual_{exc_type.__name__.lower()}"
    namespace = {"__name__": name, "__loader__": SourceLoader(exc_type)}
    error = _raised_in("raise ValueError('x')", f"/nonexistent/{name}.py", namespace)
    if exc_type is KeyboardInterrupt:
        with pytest.raises(KeyboardInterrupt):
            exceptions_from_error(error)
        return
    frame = exceptions_from_error(error)[-1]["stacktrace"]["frames"][-1]
    assert frame["lineno"] == 1 and frame["filename"] == f"{name}.py"
    assert "context_line" not in frame  # no source, no context


@pytest.mark.parametrize(
    ("module", "path", "filename"),
    [
        ("shop", "/srv/app/shop/__init__.py", "shop/__init__.py"),
        ("shop.views", "/srv/app/shop/views.py", "shop/views.py"),
        ("shop.views", "/srv/app/elsewhere/views.py", "views.py"),  # the path does not end like the module
        ("shop.views", "/srv/app/shop/other.py", "other.py"),
    ],
)
def test_short_file_names_follow_the_module_name(module: str, path: str, filename: str) -> None:
    error = _raised_in("raise ValueError('x')", path, {"__name__": module})
    frame = exceptions_from_error(error)[-1]["stacktrace"]["frames"][-1]
    assert (frame["abs_path"], frame["filename"], frame["module"]) == (path, filename, module)


class UnreadableList(list):  # type: ignore[type-arg]
    """A list that cannot be iterated or measured."""

    def __init__(self, exc_type: type[BaseException]) -> None:
        super().__init__([1, 2])
        self.exc_type = exc_type

    def __iter__(self) -> Any:
        raise self.exc_type("iter")

    def __len__(self) -> int:
        raise self.exc_type("len")


class UnsliceableBytes(bytes):
    exc_type: type[BaseException] = RuntimeError

    def __getitem__(self, key: Any) -> Any:
        raise self.exc_type("slice")


def test_values_that_cannot_be_read() -> None:
    assert serialize_value(UnreadableList(RuntimeError)) == "<UnreadableList (could not be read)>"
    assert serialize_value(UnreadableList(RuntimeError), depth=0) == "<UnreadableList with ? items>"
    assert serialize_value(UnsliceableBytes(b"abc")) == "<UnsliceableBytes object (serialization failed)>"


def test_ctrl_c_while_reading_a_value_goes_through() -> None:
    with pytest.raises(KeyboardInterrupt):
        serialize_value(UnreadableList(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        serialize_value(UnreadableList(KeyboardInterrupt), depth=0)

    class CtrlCBytes(UnsliceableBytes):
        exc_type = KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        serialize_value(CtrlCBytes(b"abc"))
