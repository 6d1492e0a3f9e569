"""Recognizing exceptions: what ``capture_exception`` was given, and ``ignore_errors``."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import TypeAlias

__all__: list[str] = []

#: ``sys.exc_info()`` of a raised exception.
ExcInfo: TypeAlias = "tuple[type[BaseException], BaseException, TracebackType | None]"


def exc_info_of(error: BaseException | ExcInfo | None) -> ExcInfo | None:
    """``error`` as an exc_info tuple; ``None`` for the current exception when there is none.

    Raises ``TypeError`` for anything that is neither an exception nor an exc_info tuple.
    """
    if error is None:
        current = sys.exc_info()
        return None if current[1] is None else current
    if isinstance(error, BaseException):
        return (type(error), error, error.__traceback__)
    if isinstance(error, tuple) and len(error) == 3 and isinstance(error[1], BaseException):
        return error
    raise TypeError(f"capture_exception takes an exception or exc_info tuple, not {type(error).__name__}")


def matches_any(error: BaseException, ignored: tuple[type[BaseException] | str, ...]) -> bool:
    """Whether ``error`` is an instance of an ignored class, or of a class named ``Name`` or ``module.Name``."""
    for cls in type(error).__mro__:
        names = (cls.__name__, f"{cls.__module__}.{cls.__qualname__}")
        for entry in ignored:
            if cls is entry or entry in names:
                return True
    return False
