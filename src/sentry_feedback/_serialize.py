"""Turning events into JSON bytes without ever failing.

The fast path is one ``json.dumps`` call. Anything it cannot take (custom objects,
cycles, NaN, non-string keys, very deep nesting) goes through :func:`normalize`, which
replaces what JSON cannot hold by a bounded ``repr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["dumps", "normalize", "safe_repr"]

MAX_DEPTH = 10
MAX_REPR = 1024
MAX_ITEMS = 1000
_MAX_INT_BITS = 4000


def safe_repr(value: object, limit: int = MAX_REPR) -> str:
    """``repr(value)`` cut to ``limit`` characters; raises nothing but ``KeyboardInterrupt``."""
    try:
        text = repr(value)
    except KeyboardInterrupt:
        raise  # Ctrl-C on the caller's thread is the program's, not a broken __repr__
    except BaseException as exc:  # a broken __repr__ (even one raising SystemExit) must not break capture
        text = f"<{type(value).__name__} object (repr failed: {type(exc).__name__})>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def normalize(value: Any, depth: int = MAX_DEPTH) -> Any:
    """Return a copy of ``value`` that ``json.dumps`` accepts: plain containers, str keys, finite numbers."""
    return _normalize(value, depth, set())


def _normalize(value: Any, depth: int, seen: set[int]) -> Any:
    try:
        return _normalize_value(value, depth, seen)
    except RecursionError:
        return "<too deep>"
    except Exception:  # a container whose items() or iteration raises
        return safe_repr(value)


def _normalize_value(value: Any, depth: int, seen: set[int]) -> Any:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        # Beyond ~4300 digits int->str raises; no JSON consumer wants such a number anyway.
        return value if value.bit_length() <= _MAX_INT_BITS else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return value[:MAX_REPR].decode("utf-8", "replace")
    if depth <= 0:
        return safe_repr(value, 100)
    if id(value) in seen:
        return "<cycle>"
    if isinstance(value, Mapping):
        seen.add(id(value))
        try:
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(list(value.items())):
                if i >= MAX_ITEMS:
                    break
                key = k if isinstance(k, str) else safe_repr(k, 100)
                out[key] = _normalize(v, depth - 1, seen)
            return out
        finally:
            seen.discard(id(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        seen.add(id(value))
        try:
            return [_normalize(v, depth - 1, seen) for v in list(value)[:MAX_ITEMS]]
        finally:
            seen.discard(id(value))
    return safe_repr(value)


def _default(value: object) -> Any:
    raise TypeError  # force the normalizing path for anything json cannot take


#: One encoder for every call (``json.dumps`` with options makes a new one each time, about a
#: third of the cost of encoding an envelope header). Encoders keep no state between calls.
#: Made by the first ``dumps`` (``json`` is imported then, on the background thread).
_ENCODE: Callable[[Any], str] | None = None
_ENCODE_NORMALIZED: Callable[[Any], str] | None = None


def _encoders() -> tuple[Callable[[Any], str], Callable[[Any], str]]:
    global _ENCODE, _ENCODE_NORMALIZED
    if _ENCODE is None or _ENCODE_NORMALIZED is None:
        import json

        _ENCODE_NORMALIZED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
        _ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default).encode
    return _ENCODE, _ENCODE_NORMALIZED


def dumps(value: Any) -> bytes:
    """Serialize ``value`` to compact UTF-8 JSON; never raises for odd values."""
    encode, encode_normalized = _encoders()
    try:
        return encode(value).encode("utf-8", "replace")
    except Exception:  # TypeError, ValueError, RecursionError, or a container that raises when read
        return encode_normalized(normalize(value)).encode("utf-8", "replace")
