"""The SDK's logger, without importing :mod:`logging` before something needs it.

Importing ``logging`` (with ``re``, ``enum``, ``traceback``, ``string``, ...) costs more
than the rest of the SDK. :data:`logger` stands for ``logging.getLogger("sentry_feedback")``:
every attribute and method is the real logger's (same name, so the application's logging
configuration applies as usual), but while ``logging`` has not been imported by anyone, a
log call is dropped without importing it. Nothing is lost: until ``logging`` is imported
nobody can have given the logger (or the root logger) a handler, so the record would go
nowhere (the SDK's ``NullHandler`` keeps Python's last-resort handler quiet).

Anything else (``setLevel``, ``addHandler``, ``handlers``, ...) imports ``logging`` and
acts on the real logger.
"""

from __future__ import annotations

import _thread
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

__all__ = ["LOGGER_NAME", "add_null_handler", "logger", "real_logger"]

#: The name of the SDK's logger (its records are never captured by the logging integration).
LOGGER_NAME = "sentry_feedback"

#: The methods that only emit a record: dropped while ``logging`` is not imported.
_EMITTING = frozenset(("debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"))

_real: logging.Logger | None = None
_lock = _thread.allocate_lock()


def real_logger() -> logging.Logger:
    """``logging.getLogger("sentry_feedback")`` (imports ``logging``), with the SDK's ``NullHandler``.

    The ``NullHandler`` keeps Python's last-resort handler from printing the SDK's warnings
    when the application configured no logging; it is added once, the first time this runs.
    """
    global _real
    if _real is None:
        import logging

        with _lock:
            if _real is None:
                real = logging.getLogger(LOGGER_NAME)
                if not any(type(handler) is logging.NullHandler for handler in real.handlers):
                    real.addHandler(logging.NullHandler())
                _real = real
    return _real


def add_null_handler(module: object = None) -> None:
    """Give the SDK's logger its ``NullHandler`` (a hook for the import of ``logging``)."""
    real_logger()


def _dropped(*args: object, **kwargs: object) -> None:
    """A log call made while ``logging`` is not imported: no handler can exist, so it goes nowhere."""


def _never(level: int) -> bool:
    """``isEnabledFor`` while ``logging`` is not imported: nothing would be emitted."""
    return False


class _LazyLogger:
    """Stands for ``logging.getLogger("sentry_feedback")``; imports ``logging`` only when needed."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Callable[..., object]:
        if "logging" not in sys.modules and _real is None:
            if name in _EMITTING:
                return _dropped
            if name == "isEnabledFor":
                return _never
        value: Callable[..., object] = getattr(real_logger(), name)
        return value

    def __setattr__(self, name: str, value: object) -> None:
        setattr(real_logger(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(real_logger(), name)

    def __repr__(self) -> str:
        return repr(real_logger())


if TYPE_CHECKING:
    #: The SDK's logger (see the module docstring).
    logger: logging.Logger
else:
    logger = _LazyLogger()
