"""sentry-feedback: user feedback for Python applications, delivered to Sentry.

>>> import sentry_feedback
>>> sentry_feedback.init(dsn="https://key@o1.ingest.sentry.io/42")
>>> sentry_feedback.capture_feedback("The pay button does nothing", email="jane@example.com")

Everything public is importable from this module; the submodules
``sentry_feedback.exceptions``, ``sentry_feedback.server`` (the local receiver) and
``sentry_feedback.testing`` are public too.
"""

from __future__ import annotations

import sys as _sys

from . import _log
from ._version import __version__ as __version__
from .integrations import when_imported as _when_imported

TYPE_CHECKING = False
if TYPE_CHECKING:  # for type checkers, what ``_public`` imports at run time
    from types import ModuleType

    from . import exceptions as exceptions
    from ._api import *  # noqa: F403
    from ._attachment import *  # noqa: F403
    from ._client import *  # noqa: F403
    from ._client_reports import *  # noqa: F403
    from ._context import *  # noqa: F403
    from ._dsn import *  # noqa: F403
    from ._envelope import *  # noqa: F403
    from ._feedback import MAX_MESSAGE_LENGTH as MAX_MESSAGE_LENGTH
    from ._feedback import FeedbackFields as FeedbackFields
    from ._options import *  # noqa: F403
    from ._ratelimit import *  # noqa: F403
    from ._scope import *  # noqa: F403
    from ._scrubber import *  # noqa: F403
    from ._sessions import *  # noqa: F403
    from ._spans import *  # noqa: F403
    from ._tracing import *  # noqa: F403
    from ._transport import *  # noqa: F403
    from ._types import BeforeSend as BeforeSend
    from ._types import Event as Event
    from ._types import EventProcessor as EventProcessor
    from ._types import Hint as Hint
    from ._types import Level as Level
    from .exceptions import *  # noqa: F403

# What the import does: nothing but this module and the SDK's logger. The public names (and
# the modules behind them) are imported by the first use of one of them (see ``_public``):
# an application that imports the SDK pays for it when it calls ``init``, not before.

# The library never prints unless the application configures logging (or debug=True): the
# SDK's logger gets a NullHandler, as soon as ``logging`` is imported (not by the SDK).
if "logging" in _sys.modules:
    _log.real_logger()
else:
    _when_imported("logging", _log.add_null_handler)


_PUBLIC = f"{__name__}._public"
_adopted = False


def _load_public() -> ModuleType | None:
    """The ``_public`` module, imported on first use; its names become this package's.

    (Not named ``_public``: importing the submodule sets that attribute of the package.)

    ``None`` while this thread imports it: one of the SDK's modules asks for a sibling
    (``from . import _client``), which the import system then imports itself.
    """
    global _adopted
    module = _sys.modules.get(_PUBLIC)
    if module is None or not getattr(module, "_COMPLETE", False):
        __import__(_PUBLIC)  # waits while another thread imports it; returns at once inside our own import
        module = _sys.modules[_PUBLIC]
        if not getattr(module, "_COMPLETE", False):
            return None
    if not _adopted:
        namespace = globals()
        for key, value in vars(module).items():
            if not key.startswith("__") or key == "__all__":
                namespace.setdefault(key, value)
        _adopted = True
    return module


def _submodule(name: str) -> ModuleType:
    """The package's module ``name`` (imported now if need be); ``AttributeError`` if there is none."""
    qualified = f"{__name__}.{name}"
    try:
        __import__(qualified)
    except ModuleNotFoundError as exc:
        if exc.name != qualified:
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return _sys.modules[qualified]


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """A public name of the SDK (the first one asked for imports them all), or a private module."""
        if name.startswith("__") and name != "__all__":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        if name.startswith("_") and name != "__all__":
            # A private module (``from . import _random`` in a module being imported): that one only.
            return _submodule(name)
        public = _load_public()
        if public is not None:
            namespace = globals()
            if name in namespace:
                return namespace[name]
            if hasattr(public, name):  # Level and FeedbackFields: made on first use (see ``_typed``)
                return getattr(public, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        _load_public()
        return sorted(globals())
