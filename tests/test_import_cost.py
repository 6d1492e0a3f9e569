"""What ``import sentry_feedback`` and ``init`` load, and the light-weight stand-ins that keep it small.

The import and ``init`` run on the application's thread at startup: they load only what
they need (no ``urllib3``, ``ssl`` or ``certifi`` before the first send, no ``platform``,
``uuid``, ``http``, ``email``...). The SDK's own replacements for heavy modules behave as
what they replace: the logger (``logging``), frozen value classes (``dataclasses``), the
DSN parser (``urllib.parse``), the runtime and OS contexts (``platform``), and the names
that need ``typing`` (``Level``, ``FeedbackFields``), which are made on first use.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
import os
import pickle
import platform
import subprocess
import sys
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sentry_feedback as sf
from sentry_feedback import _log
from sentry_feedback._dsn import Dsn, _split_plain, _split_with_urllib
from sentry_feedback._stacktrace import StackOptions
from sentry_feedback.integrations.contexts import _python_implementation_and_version, _system_and_release

DSN = "http://key@127.0.0.1:9/1"

#: All that ``import sentry_feedback`` loads: the rest comes with the first public name used.
IMPORTED = (
    "__future__",
    "sentry_feedback",
    "sentry_feedback._log",
    "sentry_feedback._version",
    "sentry_feedback.integrations",
)
#: Never loaded by ``import sentry_feedback``.
NOT_IMPORTED = (
    "asyncio",
    "certifi",
    "collections",
    "dataclasses",
    "datetime",
    "email",
    "enum",
    "http",
    "http.client",
    "importlib.metadata",
    "importlib.util",
    "inspect",
    "ipaddress",
    "json",
    "logging",
    "mimetypes",
    "platform",
    "random",
    "re",
    "sentry_feedback._client",
    "sentry_feedback._typed",
    "socket",
    "ssl",
    "tempfile",
    "threading",
    "typing",
    "urllib.parse",
    "urllib3",
    "uuid",
)
#: Never loaded by ``init`` (with the default integrations, and the web frameworks installed
#: here auto-enabled): urllib3, ssl and certifi are loaded by the first send, on the SDK's thread;
#: the request handling once a framework is imported.
NOT_IMPORTED_BY_INIT = (
    "asyncio",
    "base64",
    "dataclasses",
    "datetime",
    "enum",
    "inspect",
    "ipaddress",
    "json",
    "linecache",
    "logging",
    "re",
    "socket",
    "string",
    "tokenize",
    "traceback",
    "typing",
    "unicodedata",
    "urllib.parse",
    "certifi",
    "email",
    "http",
    "http.client",
    "importlib.metadata",
    "importlib.util",
    "mimetypes",
    "platform",
    "random",
    "sentry_feedback._request_data",
    "sentry_feedback._stacktrace",
    "sentry_feedback._typed",
    "sentry_feedback._web",
    "sentry_feedback.asgi",
    "sentry_feedback.wsgi",
    "ssl",
    "tempfile",
    "urllib3",
    "uuid",
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    # Measured as an application sees it: not under coverage (``nox -s coverage`` measures subprocesses, and
    # coverage itself imports many modules at start).
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    return result


def _loaded_after(code: str, names: tuple[str, ...]) -> list[str]:
    """The modules of ``names`` loaded after running ``code`` in a fresh interpreter."""
    result = _run(f"import sys\n{code}\nprint('\\n'.join(m for m in {names!r} if m in sys.modules))")
    return result.stdout.split()


def test_import_loads_none_of_the_heavy_modules() -> None:
    assert _loaded_after("import sentry_feedback", NOT_IMPORTED) == []


def test_import_loads_only_the_package_and_its_logger() -> None:
    code = "import sys\nbefore = set(sys.modules)\nimport sentry_feedback\nprint(*sorted(set(sys.modules) - before))"
    assert set(_run(code).stdout.split()) <= set(IMPORTED)


@pytest.mark.parametrize(
    "use",
    [
        "from sentry_feedback import init, Client, FeedbackError, Level",
        "sentry_feedback.Client; sentry_feedback.exceptions.FeedbackError; sentry_feedback._client.Client",
        "assert {'init', 'Client', 'exceptions'} <= set(dir(sentry_feedback))",
        "from sentry_feedback import *; init; FeedbackFields",
        "import sentry_feedback.testing; sentry_feedback.testing.MockTransport",
        "import sentry_feedback.wsgi, sentry_feedback.asgi; sentry_feedback.init",
        "from sentry_feedback.integrations.flask import FlaskIntegration; sentry_feedback.Client",
    ],
)
def test_the_first_public_name_used_loads_the_sdk(use: str) -> None:
    _run(f"import sentry_feedback\n{use}\nassert 'sentry_feedback._client' in __import__('sys').modules")


def _relative_imports(module: str) -> set[tuple[str, str]]:
    import ast
    from pathlib import Path

    tree = ast.parse((Path(sf.__file__).parent / module).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module not in (None, "_version", "_log"):
            found.update((node.module or "", alias.name) for alias in node.names if node.module != "integrations")
    return found


def test_type_checkers_see_the_names_the_package_gives() -> None:
    """``__init__`` imports for type checkers what ``_public`` imports at run time."""
    assert _relative_imports("__init__.py") == _relative_imports("_public.py")


def test_a_private_module_is_imported_alone() -> None:
    code = (
        "import sys, sentry_feedback\n"
        "assert sentry_feedback._random.event_id()\n"
        "assert 'sentry_feedback._client' not in sys.modules\n"
        "assert sentry_feedback._client.Client is sentry_feedback.Client\n"
    )
    _run(code)


def test_unknown_names_are_attribute_errors() -> None:
    code = (
        "import sys, sentry_feedback\n"
        "assert not hasattr(sentry_feedback, '__wrapped__')  # probes for dunders load nothing\n"
        "assert 'sentry_feedback._client' not in sys.modules\n"
        "try:\n"
        "    sentry_feedback._no_such_module\n"
        "except AttributeError:\n"
        "    pass\n"
        "try:\n"
        "    sentry_feedback.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
        "from sentry_feedback import init\n"
    )
    _run(code)


def test_threads_using_the_sdk_at_once_get_the_same_names() -> None:
    code = (
        "import threading, sentry_feedback\n"
        "found, start = [], threading.Barrier(8)\n"
        "def use():\n"
        "    start.wait()\n"
        "    found.append((sentry_feedback.init, sentry_feedback.Client, sentry_feedback.exceptions))\n"
        "threads = [threading.Thread(target=use) for _ in range(8)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "assert len(found) == 8 and len(set(found)) == 1, found\n"
    )
    _run(code)


def test_init_loads_none_of_the_heavy_modules() -> None:
    code = f"import sentry_feedback\nsentry_feedback.init({DSN!r})"
    assert _loaded_after(code, NOT_IMPORTED_BY_INIT) == []


def test_the_web_integrations_are_enabled_without_their_frameworks_being_imported() -> None:
    code = (
        "import sys, sentry_feedback\n"
        f"client = sentry_feedback.init({DSN!r})\n"
        "print(sorted(client.integrations))\n"
        "assert not {'flask', 'starlette', 'fastapi', 'django'} & set(sys.modules), sorted(sys.modules)\n"
    )
    shown = _run(code).stdout
    for name in ("django", "fastapi", "flask", "starlette", "logging", "excepthook"):
        assert repr(name) in shown


# -- the logger ------------------------------------------------------------------------------------------


def test_the_logger_is_the_sdk_logger() -> None:
    real = logging.getLogger("sentry_feedback")
    assert _log.real_logger() is real
    assert _log.logger.name == "sentry_feedback"
    assert _log.logger.handlers is real.handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in real.handlers)
    assert repr(_log.logger) == repr(real)


def test_the_logger_configures_the_real_one(monkeypatch: pytest.MonkeyPatch) -> None:
    real = logging.getLogger("sentry_feedback")
    monkeypatch.setattr(real, "level", real.level)
    _log.logger.setLevel(logging.DEBUG)
    assert real.level == logging.DEBUG
    assert _log.logger.isEnabledFor(logging.DEBUG)


def test_a_record_names_the_caller_not_the_stand_in(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        _log.logger.warning("from %s", "here")
    (record,) = [r for r in caplog.records if r.name == "sentry_feedback"]
    assert record.getMessage() == "from here"
    assert record.funcName == "test_a_record_names_the_caller_not_the_stand_in"
    assert record.pathname == __file__


def test_without_logging_imported_log_calls_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "logging")
    monkeypatch.setattr(_log, "_real", None)
    assert _log.logger.warning("nobody can have a handler for this") is None
    assert _log.logger.exception("nor for this") is None
    assert _log.logger.isEnabledFor(logging.CRITICAL) is False
    assert _log._real is None  # nothing was imported or set up


def test_the_sdk_stays_quiet_when_logging_is_imported_later() -> None:
    code = (
        "import sentry_feedback\n"
        "import logging\n"
        "handlers = logging.getLogger('sentry_feedback').handlers\n"
        "assert any(isinstance(h, logging.NullHandler) for h in handlers), handlers\n"
        "sentry_feedback.set_level('loud')  # a warning on the SDK's logger: not printed\n"
    )
    assert _run(code).stderr == ""


def test_the_logging_integration_works_when_logging_is_imported_after_init() -> None:
    code = (
        "import sentry_feedback\n"
        "events = []\n"
        "sentry_feedback.init(transport=lambda envelope: events.append(envelope))\n"
        "import logging\n"
        "logging.getLogger('app').error('boom')\n"
        "assert sentry_feedback.flush(5)\n"
        "print(sum(1 for e in events for i in e.items if i.type == 'event'))\n"
    )
    assert _run(code).stdout.strip() == "1"


def test_debug_prints_the_sdk_log() -> None:
    code = f"import sentry_feedback\nsentry_feedback.init({DSN!r}, debug=True)\n"
    assert "[sentry_feedback] DEBUG: sentry_feedback initialized" in _run(code).stderr


# -- frozen value classes --------------------------------------------------------------------------------


def _values() -> list[object]:
    return [
        Dsn.parse("https://key:secret@o1.ingest.sentry.io:8443/prefix/42"),
        sf.RetryPolicy(max_attempts=3, jitter=0.5),
        sf.Options.build(DSN, release="1.0", in_app_include=["app"]),
        sf.PropagationContext(parent_span_id="b" * 16, parent_sampled=True),
        StackOptions(in_app_include=("app",), context_lines=2),
    ]


@pytest.mark.parametrize("value", _values(), ids=lambda value: type(value).__name__)
def test_frozen_values_behave_as_frozen_dataclasses(value: object) -> None:
    fields = type(value).__match_args__  # type: ignore[attr-defined]
    assert fields == tuple(inspect.signature(type(value)).parameters)
    for name in fields:
        with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot assign to field '{name}'"):
            setattr(value, name, None)
        with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot delete field '{name}'"):
            delattr(value, name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.other = 1  # type: ignore[attr-defined]
    same = type(value)(*(getattr(value, name) for name in fields))
    assert same == value and hash(same) == hash(value) and same is not value
    assert value != object() and (value == object()) is False
    assert copy.copy(value) == value
    assert copy.deepcopy(value) == value
    assert pickle.loads(pickle.dumps(value)) == value
    assert repr(value).startswith(f"{type(value).__qualname__}({fields[0]}=")


def test_reprs_are_those_of_dataclasses() -> None:
    dsn = Dsn.parse("https://key@host/42")
    assert repr(dsn) == (
        "Dsn(scheme='https', public_key='key', host='host', project_id='42', port=None, path_prefix='', "
        "secret_key=None)"
    )
    assert repr(sf.RetryPolicy()) == "RetryPolicy(max_attempts=4, initial=1.0, maximum=30.0, jitter=0.25)"
    options = sf.Options.build(transport=lambda envelope: None)
    assert " transport=" not in repr(options) and "transport_queue_size=100" in repr(options)
    assert repr(options).startswith("Options(dsn=None, release=None, environment='production', dist=None")


def test_a_field_made_per_instance_is_shown_as_a_factory() -> None:
    parameters = inspect.signature(sf.PropagationContext).parameters
    assert [name for name, p in parameters.items() if repr(p.default) == "<factory>"] == [
        "trace_id",
        "span_id",
        "sample_rand",
    ]
    first, second = sf.PropagationContext(), sf.PropagationContext()
    assert first.trace_id != second.trace_id and len(first.trace_id) == 32
    assert sf.Options().retry == sf.RetryPolicy()


def test_replace_and_unknown_options() -> None:
    options = sf.Options.build(DSN)
    assert options.replace(release="2.0") == sf.Options.build(DSN, release="2.0")
    with pytest.raises(TypeError, match="'nope'"):
        sf.Options.build(DSN, nope=1)
    with pytest.raises(TypeError):
        sf.Options(nope=1)  # type: ignore[call-arg]


def test_a_frozen_class_must_name_its_fields_in_one_order() -> None:
    from sentry_feedback._record import Frozen

    with pytest.raises(TypeError, match="one order"):

        class Swapped(Frozen):
            __slots__ = _fields = ("a", "b")

            def __init__(self, b: int, a: int) -> None:
                object.__setattr__(self, "a", a)
                object.__setattr__(self, "b", b)


# -- the DSN parser --------------------------------------------------------------------------------------

DSNS = [
    "https://key@o1.ingest.sentry.io/42",
    "http://key@localhost:9000/7",
    "http://k-e_y.~1@h-o.s.t:0/1",
    "https://key:secret@sentry.example.com/5",
    "https://key:@host/42",
    "https://key@Host.Example/a/b/42/",
    "https://key@host:65535/42",
    "https://key@host:65536/42",
    "https://key@host:00080/42",
    "https://key@host:/42",
    "https://key@host:8x/42",
    "https://key@host",
    "https://key@host/",
    "https://key@host/abc",
    "https://@host/42",
    "https://:secret@host/42",
    "https://key:a:b@host/42",
    "https://a@b@host/42",
    "https://key@/42",
    "https://key@host/42?x=1",
    "https://key@host/42#frag",
    "https://k%65y:s%40c@host/42",
    "https://key@[::1]:9000/3",
    "https://key@[::1/3",
    "https://key@host\t/42",
    "https://ke y@host/42",
    "https://key@hóst/42",
    "https://key@host/4\u0662",
    "HTTP://key@host/42",
    "ftp://key@host/42",
    "host/42",
    "",
]


def _parsed(text: str) -> object:
    try:
        return _split_with_urllib(text, text)
    except ValueError as exc:
        return str(exc)


@pytest.mark.parametrize("text", DSNS)
def test_the_plain_dsn_parser_agrees_with_urllib(text: str) -> None:
    plain = _split_plain(text)
    assert plain is None or plain == _parsed(text)


@given(
    st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    st.text("abAB09-._~:%@ ", max_size=12),
    st.text("abAB09-.:[]_ ", min_size=0, max_size=12),
    st.text("abAB09-._~/?#% ", max_size=12),
)
def test_the_plain_dsn_parser_agrees_with_urllib_on_anything(
    scheme: str, userinfo: str, hostport: str, path: str
) -> None:
    text = f"{scheme}://{userinfo}@{hostport}/{path}"
    plain = _split_plain(text)
    assert plain is None or plain == _parsed(text)


# -- platform and typing -----------------------------------------------------------------------------------


def test_the_contexts_are_platforms() -> None:
    assert _python_implementation_and_version() == (platform.python_implementation(), platform.python_version())
    assert _system_and_release() == (platform.system(), platform.release())


def test_level_and_feedback_fields_are_made_on_first_use() -> None:
    assert typing.get_args(sf.Level) == ("fatal", "error", "warning", "info", "debug")
    fields = sf.FeedbackFields
    assert fields.__module__ == "sentry_feedback._feedback"
    assert typing.is_typeddict(fields) and fields.__total__ is False
    assert set(fields.__optional_keys__) == {
        "email",
        "name",
        "url",
        "associated_event_id",
        "replay_id",
        "source",
        "tags",
        "attachments",
        "hint",
        "scope",
    }
    from sentry_feedback._feedback import FeedbackFields
    from sentry_feedback._types import Level

    assert FeedbackFields is fields and Level is sf.Level
    with pytest.raises(AttributeError):
        sf.NoSuchName  # type: ignore[attr-defined]  # noqa: B018


def test_star_import_gives_every_public_name() -> None:
    code = "from sentry_feedback import *\nprint(Level, FeedbackFields, init, Options)"
    assert "Literal" in _run(code).stdout
