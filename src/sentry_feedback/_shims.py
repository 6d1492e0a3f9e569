"""Run-time stand-ins for :class:`typing.Generic` and :class:`typing.TypeVar`.

``import typing`` costs several milliseconds (it imports ``re``, ``contextlib``,
``collections``, ...). A module whose generic class is on the import path takes the real
ones for type checkers and these at run time::

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import Generic, TypeVar
    else:
        from ._shims import Generic, TypeVar

At run time ``Generic[T]``, and a subclass subscripted (``Worker[int]``), are the class
itself: subscripting works, type parameters are not recorded.
"""

from __future__ import annotations

__all__ = ["Generic", "TypeVar"]


class Generic:
    """A base class that can be subscripted; ``Cls[...]`` is ``Cls``."""

    __slots__ = ()

    def __class_getitem__(cls, parameters: object) -> type:
        return cls


def TypeVar(name: str, *constraints: object, **options: object) -> str:
    """Stands for a type variable: its name (annotations are not evaluated at run time)."""
    return name
