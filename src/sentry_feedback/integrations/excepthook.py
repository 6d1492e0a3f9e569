"""Unhandled exceptions: ``sys.excepthook`` and ``threading.excepthook``."""

from __future__ import annotations

import sys
import threading

from .._log import logger
from . import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import ClassVar

__all__ = ["ExcepthookIntegration", "ThreadingIntegration"]


def _capture_unhandled(error: BaseException, mechanism_type: str, flush: bool) -> None:
    from .._context import get_client

    client = get_client()
    try:
        client.capture_exception(error, handled=False, mechanism_type=mechanism_type)
        if flush:
            # The interpreter is about to exit: send now rather than rely on later atexit hooks.
            client.flush(client.options.shutdown_timeout)
    except Exception:  # never make a crash worse
        logger.exception("could not report an unhandled exception")


class ExcepthookIntegration(Integration):
    """Reports exceptions that end the program (``sys.excepthook``), then flushes.

    The previous hook still runs, so the traceback is printed as usual. In an interactive
    session nothing is reported unless ``always_run=True``. ``KeyboardInterrupt`` is not reported.
    """

    identifier: ClassVar[str] = "excepthook"

    def __init__(self, *, always_run: bool = False) -> None:
        self.always_run = always_run

    def setup_once(self) -> None:
        """Wrap ``sys.excepthook``."""
        previous = sys.excepthook

        def sentry_feedback_excepthook(
            exc_type: type[BaseException], exc_value: BaseException, tb: TracebackType | None
        ) -> None:
            from .._context import get_client

            integration = get_client().get_integration(ExcepthookIntegration)
            if (
                integration is not None
                and (integration.always_run or not hasattr(sys, "ps1"))
                and not issubclass(exc_type, KeyboardInterrupt)
            ):
                _capture_unhandled(exc_value, "excepthook", flush=True)
            previous(exc_type, exc_value, tb)

        sys.excepthook = sentry_feedback_excepthook


class ThreadingIntegration(Integration):
    """Reports exceptions that end a thread (``threading.excepthook``); the previous hook still runs."""

    identifier: ClassVar[str] = "threading"

    def setup_once(self) -> None:
        """Wrap ``threading.excepthook``."""
        previous = threading.excepthook

        def sentry_feedback_threading_excepthook(args: threading.ExceptHookArgs) -> None:
            from .._context import get_client

            if (
                get_client().get_integration(ThreadingIntegration) is not None
                and args.exc_value is not None
                and not issubclass(args.exc_type, SystemExit)
            ):
                _capture_unhandled(args.exc_value, "threading", flush=False)
            previous(args)

        threading.excepthook = sentry_feedback_threading_excepthook
