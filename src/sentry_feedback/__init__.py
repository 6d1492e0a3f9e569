"""sentry-feedback: user feedback for Python applications, delivered to Sentry.

>>> import sentry_feedback
>>> sentry_feedback.init(dsn="https://key@o1.ingest.sentry.io/42")
>>> sentry_feedback.capture_feedback("The pay button does nothing", email="jane@example.com")

Everything public is importable from this module; the submodules
``sentry_feedback.exceptions``, ``sentry_feedback.server`` (the local receiver) and
``sentry_feedback.testing`` are public too.
"""

from __future__ import annotations

import logging

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
from ._feedback import *  # noqa: F403
from ._options import *  # noqa: F403
from ._ratelimit import *  # noqa: F403
from ._scope import *  # noqa: F403
from ._scrubber import *  # noqa: F403
from ._tracing import *  # noqa: F403
from ._transport import *  # noqa: F403
from ._types import *  # noqa: F403
from ._version import __version__
from .exceptions import *  # noqa: F403

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
__all__ += _tracing.__all__
__all__ += _transport.__all__
__all__ += _types.__all__
__all__ += exceptions.__all__

# The library never prints unless the application configures logging (or debug=True).
logging.getLogger("sentry_feedback").addHandler(logging.NullHandler())
