"""Small immutable value classes without :mod:`dataclasses`.

``import dataclasses`` costs about 10 ms (it imports ``inspect``, ``ast``, ``dis``,
``tokenize``, ``re``, ...), more than the rest of the SDK's import. :class:`Frozen` gives a
class what ``@dataclass(frozen=True)`` gave it: field-wise equality and hashing, a
``Name(field=value, ...)`` repr, ``__match_args__``, pickling and copying, and assignment
raising :class:`dataclasses.FrozenInstanceError` (``dataclasses`` is imported only then).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__: list[str] = []


class _Factory:
    """The default of a field whose value is made for each instance (what ``field(default_factory=...)`` did)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


#: A parameter's default meaning "make a new value" (shown as ``<factory>`` in signatures).
FACTORY: Any = _Factory()


def _frozen(message: str) -> NoReturn:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(message)


class Frozen:
    """Base of the SDK's immutable value classes.

    A subclass names its fields in ``_fields`` and ``__slots__``
    (``__slots__ = _fields = (...)``), takes them in ``__init__`` in that order and sets
    them with ``object.__setattr__``. Fields named in ``_hidden`` are left out of the repr.
    """

    __slots__ = ()
    #: The field names, in constructor order.
    _fields: tuple[str, ...] = ()
    #: Fields not shown in the repr.
    _hidden: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        slots = cls.__dict__.get("__slots__")
        if slots is not None:
            # Pickling, copying and ``replace`` pass the fields to ``__init__`` in this order.
            parameters = cls.__init__.__code__.co_varnames[1 : len(cls._fields) + 1]
            if tuple(slots) != cls._fields or parameters != cls._fields:
                raise TypeError(f"{cls.__name__}: __slots__, _fields and __init__ must name the fields in one order")
        setattr(cls, "__match_args__", cls._fields)  # noqa: B010 - mypy forbids assigning it

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields if name not in self._hidden)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        _frozen(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        _frozen(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Frozen], tuple[Any, ...]]:
        return type(self), self._values()
