"""The SDK's public names, gathered from its modules: what ``sentry_feedback`` gives.

``import sentry_feedback`` does not import this module (nor the rest of the SDK): the first
use of a public name does (``sentry_feedback.init``, ``from sentry_feedback import Client``),
and the package then holds every name, as if it had imported them itself.
"""

from __future__ import annotations

from . import (
    _api,
    _attachment,
    _client,
    _client_reports,
    _context,
    _dsn,
    _envelope,
    _feedback,
    _options,
    _ratelimit,
    _scope,
    _scrubber,
    _sessions,
    _spans,
    _tracing,
    _transport,
    _types,
    exceptions,
)
from ._api import *  # noqa: F403
from ._attachment import *  # noqa: F403
from ._client import *  # noqa: F403
from ._client_reports import *  # noqa: F403
from ._context import *  # noqa: F403
from ._dsn import *  # noqa: F403
from ._envelope import *  # noqa: F403
from ._feedback import MAX_MESSAGE_LENGTH as MAX_MESSAGE_LENGTH
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
from ._version import __version__
from .exceptions import *  # noqa: F403

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._feedback import FeedbackFields as FeedbackFields
    from ._types import Level as Level

# Each private module names its public part in its own __all__; this is their union.
__all__ = ["__version__"]
__all__ += _api.__all__
__all__ += _attachment.__all__
__all__ += _client.__all__
__all__ += _client_reports.__all__
__all__ += _context.__all__
__all__ += _dsn.__all__
__all__ += _envelope.__all__
__all__ += _feedback.__all__
__all__ += _options.__all__
__all__ += _ratelimit.__all__
__all__ += _scope.__all__
__all__ += _scrubber.__all__
__all__ += _sessions.__all__
__all__ += _spans.__all__
__all__ += _tracing.__all__
__all__ += _transport.__all__
__all__ += _types.__all__
__all__ += exceptions.__all__

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """``Level`` and ``FeedbackFields`` need ``typing``: they are made on first use (see ``_typed``)."""
        if name == "Level":
            return _types.Level
        if name == "FeedbackFields":
            return _feedback.FeedbackFields
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Set last: the package takes these names only once this module ran to its end.
_COMPLETE = True
