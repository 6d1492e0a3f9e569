"""Turning Python exceptions and call stacks into Sentry's ``exception`` and ``stacktrace`` payloads.

Everything here runs on the caller's thread while it is handling an error, so it is
written to be cheap and to never fail because of user data:

* tracebacks are walked through ``tb_next`` / ``f_back`` (no :func:`inspect.stack`,
  which would read source for every frame), source lines come from :mod:`linecache`
  only, and per-file facts (absolute path, short filename, default ``in_app``) are
  cached;
* local variables are rendered by :func:`serialize_value`, which bounds depth, breadth
  and string length, survives broken ``__repr__`` methods and cycles, and never copies
  containers beyond what it emits;
* whatever user code raises here (a ``__str__``, a property, a loader) is a failure of
  that value, ``SystemExit`` included: only ``KeyboardInterrupt`` is let through, since
  Ctrl-C belongs to the program.

Ordering follows the Sentry protocol: ``exception.values`` go oldest first (the
exception that was finally raised or caught is last) and ``stacktrace.frames`` go
outermost call first (the frame that raised is last).
"""

from __future__ import annotations

import builtins
import functools
import itertools
import math
import os
import sys
import types
from collections import deque

from ._record import Frozen
from ._serialize import safe_repr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__: list[str] = []

MAX_EXCEPTIONS = 100
"""At most this many exceptions (the raised one, its causes/contexts and group members) per event."""

MAX_VALUE_LENGTH = 8192
"""Longest exception ``value`` (``str(error)`` plus notes) sent; longer ones are cut with ``...``."""

MAX_LINE_LENGTH = 1024
"""Longest line of source context sent (minified or generated code can have huge lines)."""

_MAX_INT_BITS = 4000
_STR_FAILED = "<exception str() failed>"

# Builtin on 3.11+; on 3.10 exception groups are treated as absent (no backport lookup).
_BaseExceptionGroup: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)

_SDK_PACKAGE = __name__.partition(".")[0]
_SDK_DIR = os.path.join(os.path.normcase(os.path.dirname(os.path.abspath(__file__))), "")

_LIST_LIKE = (list, tuple, set, frozenset, deque)


class StackOptions(Frozen):
    """How exceptions and stacks are turned into Sentry payloads.

    ``in_app_include`` / ``in_app_exclude`` hold module-name prefixes: ``"myapp"``
    matches ``myapp`` and ``myapp.views`` but not ``myapplication``. A frame is in-app
    by default unless its file is in the standard library or under ``site-packages`` /
    ``dist-packages``; a matching ``in_app_exclude`` prefix makes it not in-app and a
    matching ``in_app_include`` prefix makes it in-app (include wins over exclude).

    ``max_frames`` bounds each stack trace: when a stack is longer, frames are dropped
    from the middle, keeping the oldest ``max_frames // 2`` (the entry point) and the
    newest ``max_frames - max_frames // 2`` (where it went wrong) -- the useful ends of
    a deep recursion.
    """

    __slots__ = _fields = (
        "in_app_include",
        "in_app_exclude",
        "include_local_variables",
        "include_source_context",
        "context_lines",
        "max_frames",
    )

    #: Module-name prefixes whose frames are always in-app.
    in_app_include: tuple[str, ...]
    #: Module-name prefixes whose frames are never in-app (unless also included).
    in_app_exclude: tuple[str, ...]
    #: Attach each frame's local variables as ``vars`` (rendered by :func:`serialize_value`).
    include_local_variables: bool
    #: Attach ``pre_context`` / ``context_line`` / ``post_context`` when the source is available.
    include_source_context: bool
    #: Lines of source sent before and after the current line.
    context_lines: int
    #: Most frames per stack trace; longer stacks lose frames from the middle.
    max_frames: int

    def __init__(
        self,
        in_app_include: tuple[str, ...] = (),
        in_app_exclude: tuple[str, ...] = (),
        include_local_variables: bool = True,
        include_source_context: bool = True,
        context_lines: int = 5,
        max_frames: int = 250,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "in_app_include", in_app_include)
        setattr_(self, "in_app_exclude", in_app_exclude)
        setattr_(self, "include_local_variables", include_local_variables)
        setattr_(self, "include_source_context", include_source_context)
        setattr_(self, "context_lines", context_lines)
        setattr_(self, "max_frames", max_frames)


_DEFAULT_OPTIONS = StackOptions()


# ---------------------------------------------------------------------------------------
# Exceptions
# ---------------------------------------------------------------------------------------


def exceptions_from_error(
    error: BaseException,
    *,
    handled: bool = True,
    mechanism_type: str = "generic",
    options: StackOptions = _DEFAULT_OPTIONS,
) -> list[dict[str, Any]]:
    """The ``exception.values`` list for ``error``, oldest first (``error`` itself is last).

    Linked exceptions are followed the way :mod:`traceback` prints them: ``__cause__``
    when set, otherwise ``__context__`` unless ``__suppress_context__`` (``raise ... from
    None``); members of a ``BaseExceptionGroup`` follow (3.11+). Each exception gets a
    sentry-python 2.x style mechanism: ``error`` gets ``{"type": mechanism_type,
    "handled": handled, "exception_id": 0}``, every linked one ``{"type": "chained",
    "handled": handled, "exception_id": n, "parent_id": p, "source": "__cause__" |
    "__context__" | "exceptions[i]"}``; groups also get ``"is_exception_group": true``.
    Ids are assigned depth first (an exception's cause/context before its group members)
    and the list is then reversed. Cycles are cut and at most :data:`MAX_EXCEPTIONS`
    exceptions are returned. Exceptions without a traceback get no ``stacktrace``.
    """
    values: list[dict[str, Any]] = []
    seen: set[int] = set()
    # (exception, parent exception_id, source); popped from the end -> depth-first pre-order.
    pending: list[tuple[BaseException, int | None, str | None]] = [(error, None, None)]
    while pending and len(values) < MAX_EXCEPTIONS:
        exc, parent_id, source = pending.pop()
        if id(exc) in seen:  # every walked exception stays referenced, so ids are unique
            continue
        seen.add(id(exc))
        exception_id = len(values)
        is_group = _BaseExceptionGroup is not None and isinstance(exc, _BaseExceptionGroup)
        mechanism: dict[str, Any]
        if parent_id is None:
            mechanism = {"type": mechanism_type, "handled": handled, "exception_id": exception_id}
        else:
            mechanism = {
                "type": "chained",
                "handled": handled,
                "exception_id": exception_id,
                "parent_id": parent_id,
                "source": source,
            }
        if is_group:
            mechanism["is_exception_group"] = True
        values.append(_single_exception(exc, mechanism, options))

        children: list[tuple[BaseException, str]] = []
        linked = _linked_exception(exc)
        if linked is not None:
            children.append(linked)
        if is_group:
            children.extend(_group_members(exc))
        for child, child_source in reversed(children):
            pending.append((child, exception_id, child_source))
    values.reverse()
    return values


def _linked_exception(exc: BaseException) -> tuple[BaseException, str] | None:
    """The exception :mod:`traceback` would print before ``exc``, with its source name."""
    try:
        cause = exc.__cause__
        if isinstance(cause, BaseException):
            return cause, "__cause__"
        context = exc.__context__
        if isinstance(context, BaseException) and not exc.__suppress_context__:
            return context, "__context__"
    except KeyboardInterrupt:
        raise
    except BaseException:  # a property overriding these must not break capture
        pass
    return None


def _group_members(group: BaseException) -> list[tuple[BaseException, str]]:
    """The members of an exception group (at most :data:`MAX_EXCEPTIONS`) with their source names."""
    try:
        members = tuple(itertools.islice(getattr(group, "exceptions", ()), MAX_EXCEPTIONS))
    except KeyboardInterrupt:
        raise
    except BaseException:
        return []
    return [(member, f"exceptions[{i}]") for i, member in enumerate(members) if isinstance(member, BaseException)]


def _single_exception(exc: BaseException, mechanism: dict[str, Any], options: StackOptions) -> dict[str, Any]:
    """One entry of ``exception.values``: type, value, module, mechanism and stack trace."""
    cls = type(exc)
    payload: dict[str, Any] = {"type": _type_name(cls), "value": _exception_value(exc)}
    module = getattr(cls, "__module__", None)
    if isinstance(module, str) and module and module != "builtins":
        payload["module"] = module
    payload["mechanism"] = mechanism
    frames = _frames_from_traceback(exc.__traceback__, options)
    if frames:  # Sentry rejects an empty frame list
        payload["stacktrace"] = {"frames": frames}
    return payload


def _type_name(cls: type) -> str:
    """The class ``__qualname__`` (``__name__`` if that is not a string)."""
    name = getattr(cls, "__qualname__", None)
    if not isinstance(name, str) or not name:
        name = getattr(cls, "__name__", None)
    return name if isinstance(name, str) and name else "Exception"


def _exception_value(exc: BaseException) -> str:
    """``str(exc)`` plus its ``__notes__`` (PEP 678), cut to :data:`MAX_VALUE_LENGTH`; never raises."""
    try:
        value = str(exc)
    except KeyboardInterrupt:
        raise
    except BaseException:
        value = _STR_FAILED
    try:
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, (list, tuple)):
            extra = [note for note in notes[:MAX_EXCEPTIONS] if isinstance(note, str)]
            if extra:
                value = "\n".join([value, *extra]) if value else "\n".join(extra)
    except KeyboardInterrupt:
        raise
    except BaseException:
        pass
    return _cut(value, MAX_VALUE_LENGTH)


# ---------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------


def _frames_from_traceback(tb: types.TracebackType | None, options: StackOptions) -> list[dict[str, Any]]:
    """The frames of a traceback, oldest first, trimmed to ``options.max_frames``."""
    entries: list[tuple[types.FrameType, int | None]] = []
    while tb is not None:
        entries.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return [_frame_payload(frame, lineno, options) for frame, lineno in _trim(entries, options.max_frames)]


def stacktrace_from_frame(
    frame: types.FrameType | None,
    *,
    options: StackOptions = _DEFAULT_OPTIONS,
    skip_sdk_frames: bool = True,
) -> dict[str, Any]:
    """``{"frames": [...]}`` for the call stack ending at ``frame``, oldest first (``frame`` last).

    Used for ``attach_stacktrace``: pass ``sys._getframe()`` of the code that captures.
    With ``skip_sdk_frames`` every frame of the ``sentry_feedback`` package itself is
    left out. ``frames`` may be empty (``frame`` is ``None`` or every frame was skipped);
    Sentry rejects an empty frame list, so callers should then send no stack trace.
    """
    frames: list[types.FrameType] = []
    while frame is not None:
        if not (skip_sdk_frames and _is_sdk_frame(frame)):
            frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return {"frames": [_frame_payload(f, f.f_lineno, options) for f in _trim(frames, options.max_frames)]}


def _trim(items: list[Any], max_frames: int) -> list[Any]:
    """Keep ``max_frames`` items: the oldest half and the newest half (the newest wins on odd counts)."""
    if len(items) <= max_frames:
        return items
    if max_frames <= 0:
        return []
    head = max_frames // 2
    return items[:head] + items[len(items) - (max_frames - head) :]


def _is_sdk_frame(frame: types.FrameType) -> bool:
    """Whether ``frame`` runs code of the ``sentry_feedback`` package."""
    module = frame.f_globals.get("__name__")
    if isinstance(module, str):
        return module == _SDK_PACKAGE or module.startswith(_SDK_PACKAGE + ".")
    return os.path.normcase(frame.f_code.co_filename).startswith(_SDK_DIR)


def _frame_payload(frame: types.FrameType, lineno: int | None, options: StackOptions) -> dict[str, Any]:
    """One Sentry frame for ``frame`` stopped at ``lineno``."""
    code = frame.f_code
    f_globals = frame.f_globals
    module = f_globals.get("__name__")
    if not isinstance(module, str) or not module:
        module = None
    abs_path, filename, default_in_app = _path_info(code.co_filename, module)
    payload: dict[str, Any] = {"filename": filename, "abs_path": abs_path}
    if module is not None:
        payload["module"] = module
    payload["function"] = _function_name(code)
    if isinstance(lineno, int) and lineno > 0:
        payload["lineno"] = lineno
        if options.include_source_context:
            _add_source_context(payload, code.co_filename, lineno, options.context_lines, f_globals)
    payload["in_app"] = _in_app_override(module, options, default_in_app)
    if options.include_local_variables:
        local_vars = _frame_vars(frame)
        if local_vars is not None:
            payload["vars"] = local_vars
    return payload


def _function_name(code: types.CodeType) -> str:
    """``co_qualname`` on 3.11+ (``Class.method``) without the ``outer.<locals>.`` prefix; else ``co_name``."""
    if sys.version_info >= (3, 11):
        name = code.co_qualname
        cut = name.rfind("<locals>.")
        return name[cut + 9 :] if cut >= 0 else name
    return code.co_name


@functools.lru_cache(maxsize=4096)
def _path_info(co_filename: str, module: str | None) -> tuple[str, str, bool]:
    """``(abs_path, filename, default in_app)`` for a code object's file, cached per file and module."""
    if not co_filename:
        return "<unknown>", "<unknown>", True
    if co_filename.startswith("<") and co_filename.endswith(">"):
        # "<string>", "<stdin>", "<frozen importlib._bootstrap>": no real path to resolve.
        return co_filename, co_filename, _default_in_app(co_filename)
    abs_path = os.path.abspath(co_filename)
    return abs_path, _short_filename(module, abs_path), _default_in_app(abs_path)


def _short_filename(module: str | None, abs_path: str) -> str:
    """The module's path relative to its ``sys.path`` root (``myapp/views.py``), else the basename.

    Derived from the module name: ``a.b`` in ``/root/a/b.py`` gives ``a/b.py`` and the
    package ``a.b`` in ``/root/a/b/__init__.py`` gives ``a/b/__init__.py``. When the path
    does not end like the module name says (``__main__``, scripts, ``exec``), the
    basename is used.
    """
    path = abs_path.replace(os.sep, "/") if os.sep != "/" else abs_path
    pieces = path.split("/")
    basename = pieces[-1]
    if not module or module == "__main__":
        return basename
    parts = module.split(".")
    stem = basename.rpartition(".")[0] or basename
    if stem == "__init__":
        expected = parts
    else:
        if stem != parts[-1]:
            return basename
        expected = parts[:-1]
    count = len(expected) + 1
    if len(pieces) > count and pieces[-count:-1] == expected:
        return "/".join(pieces[-count:])
    return basename


@functools.cache
def _stdlib_prefixes() -> tuple[str, ...]:
    """Directory prefixes (ending in a separator) of the standard library, plain and resolved."""
    import sysconfig  # only needed once, on first use

    prefixes: set[str] = set()
    try:
        paths = sysconfig.get_paths()
    except Exception:  # pragma: no cover - broken installations
        return ()
    for key in ("stdlib", "platstdlib"):
        path = paths.get(key)
        if path:
            for variant in (path, os.path.realpath(path)):
                prefixes.add(os.path.join(os.path.normcase(os.path.abspath(variant)), ""))
    return tuple(prefixes)


@functools.lru_cache(maxsize=4096)
def _default_in_app(abs_path: str | None) -> bool:
    """In-app unless the file is in the standard library, ``site-packages``/``dist-packages`` or frozen."""
    if not abs_path:
        return True
    if abs_path.startswith("<"):
        return not abs_path.startswith("<frozen ")
    path = os.path.normcase(abs_path)
    if path.startswith(_stdlib_prefixes()):
        return False
    pieces = path.replace("\\", "/").split("/")
    return "site-packages" not in pieces and "dist-packages" not in pieces


def _matches_prefix(module: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one of them (dotted-name boundary)."""
    for prefix in prefixes:
        if prefix and (module == prefix or (module.startswith(prefix) and module[len(prefix)] == ".")):
            return True
    return False


def _in_app_override(module: str | None, options: StackOptions, default: bool) -> bool:
    """``default`` adjusted by ``in_app_exclude`` and then ``in_app_include`` (include wins)."""
    if module:
        if options.in_app_include and _matches_prefix(module, options.in_app_include):
            return True
        if options.in_app_exclude and _matches_prefix(module, options.in_app_exclude):
            return False
    return default


def is_in_app(module: str | None, abs_path: str | None, options: StackOptions) -> bool:
    """Whether a frame of ``module`` in file ``abs_path`` belongs to the application.

    Frames from the standard library (under ``sysconfig``'s ``stdlib``/``platstdlib``),
    from ``site-packages``/``dist-packages`` and from frozen modules are not in-app;
    everything else (including unknown paths) is. Then a matching ``in_app_exclude``
    prefix makes the frame not in-app and a matching ``in_app_include`` prefix makes it
    in-app; include wins over exclude.
    """
    return _in_app_override(module, options, _default_in_app(abs_path))


def _add_source_context(
    payload: dict[str, Any], filename: str, lineno: int, context_lines: int, module_globals: dict[str, Any]
) -> None:
    """Add ``pre_context``/``context_line``/``post_context`` from :mod:`linecache`, if the source exists.

    ``linecache`` is not revalidated (no ``checkcache``) to keep this cheap; a file edited
    after it was cached shows its old text, as in :mod:`traceback` without ``checkcache``.
    """
    try:
        import linecache  # imports tokenize and re: only once an error is captured

        lines = linecache.getlines(filename, module_globals)
    except KeyboardInterrupt:
        raise
    except BaseException:  # loaders' get_source can raise anything
        return
    if not lines or lineno > len(lines):
        return
    index = lineno - 1
    count = max(0, context_lines)
    start = max(0, index - count)
    window = [
        line.rstrip("\r\n") if len(line) <= MAX_LINE_LENGTH else _cut(line.rstrip("\r\n"), MAX_LINE_LENGTH)
        for line in lines[start : index + 1 + count]
    ]
    current = index - start
    payload["pre_context"] = window[:current]
    payload["context_line"] = window[current]
    payload["post_context"] = window[current + 1 :]


def _frame_vars(frame: types.FrameType, max_vars: int = 50) -> dict[str, Any] | None:
    """The frame's local variables (dunder names left out, at most ``max_vars``) via :func:`serialize_value`."""
    out: dict[str, Any] = {}
    try:
        for name, value in frame.f_locals.items():
            if len(out) >= max_vars:
                break
            if not isinstance(name, str):
                name = safe_repr(name, 100)
            elif name.startswith("__") and name.endswith("__"):
                continue
            out[name] = serialize_value(value)
    except KeyboardInterrupt:
        raise
    except BaseException:  # e.g. module globals changed size while iterating from another thread
        return None
    return out


# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------


def serialize_value(value: object, *, depth: int = 3, max_length: int = 1024, max_items: int = 50) -> Any:
    """A JSON-ready, bounded rendering of ``value`` (a local variable); never raises ``Exception``.

    ``None``, ``bool``, ``int`` and finite ``float`` stay as they are (ints over ~4000 bits
    become ``"<int of N bits>"``, NaN/infinities become ``"nan"``/``"inf"``/``"-inf"``);
    ``str`` longer than ``max_length`` is cut to ``max_length`` characters ending in
    ``...``; ``bytes``/``bytearray`` become their (cut) ``repr``. Dicts, lists, tuples,
    sets and deques are expanded ``depth`` levels deep with at most ``max_items`` entries
    each (dict keys stringified, surplus entries silently dropped); deeper containers
    become ``"<dict with N items>"``, a container inside itself ``"<cycle>"``. Anything
    else (including subclasses of ``str``/``int``/``float``) is its ``repr`` cut to
    ``max_length``; a ``__repr__`` that raises -- including ``RecursionError`` -- gives a
    ``<... repr failed ...>`` placeholder.
    """
    try:
        return _serialize(value, depth, max_length, max_items, set())
    except KeyboardInterrupt:
        raise
    except BaseException:
        return f"<{type(value).__name__} object (serialization failed)>"


def _serialize(value: Any, depth: int, max_length: int, max_items: int, path: set[int]) -> Any:
    """Recursive worker of :func:`serialize_value`; ``path`` holds ids of the enclosing containers."""
    kind = type(value)  # exact types first: subclasses may override anything
    if kind is str:
        return value if len(value) <= max_length else value[: max(0, max_length - 3)] + "..."
    if kind is int:
        bits = value.bit_length()
        return value if bits <= _MAX_INT_BITS else f"<int of {bits} bits>"
    if value is None or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if kind is dict or kind is list or kind is tuple:
        return _serialize_container(value, kind is dict, depth, max_length, max_items, path)
    if isinstance(value, (bytes, bytearray)):
        text = repr(value[:max_length])
        if len(value) > max_length or len(text) > max_length:
            text = text[: max(0, max_length - 3)] + "..."
        return text
    if isinstance(value, dict):
        return _serialize_container(value, True, depth, max_length, max_items, path)
    if isinstance(value, _LIST_LIKE):
        return _serialize_container(value, False, depth, max_length, max_items, path)
    return safe_repr(value, max_length)


def _serialize_container(value: Any, is_dict: bool, depth: int, max_length: int, max_items: int, path: set[int]) -> Any:
    """A dict (``is_dict``) or list-like container rendered by :func:`_serialize`."""
    if depth <= 0:
        return f"<{type(value).__name__} with {_size(value)} items>"
    if id(value) in path:
        return "<cycle>"
    path.add(id(value))
    try:
        if is_dict:
            out: dict[str, Any] = {}
            for key, item in itertools.islice(dict.items(value), max_items):
                name = key if type(key) is str else _key_name(key)
                out[_cut(name, max_length)] = _serialize(item, depth - 1, max_length, max_items, path)
            return out
        return [_serialize(item, depth - 1, max_length, max_items, path) for item in itertools.islice(value, max_items)]
    except KeyboardInterrupt:
        raise
    except BaseException:  # a subclass with a broken __iter__, or mutated while iterating
        return f"<{type(value).__name__} (could not be read)>"
    finally:
        path.discard(id(value))


def _key_name(key: object) -> str:
    """A dict key as a string: ``str()`` for numbers and booleans, a bounded ``repr`` otherwise."""
    if type(key) is int:
        return str(key) if key.bit_length() <= _MAX_INT_BITS else f"<int of {key.bit_length()} bits>"
    if key is None or type(key) is float or type(key) is bool:
        return str(key)
    return safe_repr(key, 100)


def _size(value: Any) -> str:
    """``len(value)`` as text, ``"?"`` if it fails."""
    try:
        return str(len(value))
    except KeyboardInterrupt:
        raise
    except BaseException:
        return "?"


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)] + "..."
