"""Log records as breadcrumbs and events (the ``logging`` integration)."""

from __future__ import annotations

import contextlib
import sys
import threading

from .._lazy import LazyPattern
from .._log import LOGGER_NAME, logger
from .._worker import WORKER_THREAD_NAME
from . import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any, ClassVar

    from .._types import Event

__all__ = ["SKIP_ATTRIBUTE", "LoggingIntegration", "ignore_logger", "mark_reported", "strip_ansi"]

#: ``logger.error("...", extra={SKIP_ATTRIBUTE: True})`` keeps one record out of Sentry.
SKIP_ATTRIBUTE = "sentry_feedback_skip"
#: Set on an exception a web request's error handling reported already (:func:`mark_reported`).
_REPORTED = "__sentry_feedback_reported__"

# The values of logging.INFO, WARNING, ERROR and CRITICAL (fixed since Python 1.5): this
# module does not import ``logging``; the integration is set up once the application does.
_INFO, _WARNING, _ERROR, _CRITICAL = 20, 30, 40, 50
_LEVELS = {_CRITICAL: "fatal", _ERROR: "error", _WARNING: "warning", _INFO: "info"}
# Attributes every LogRecord has; anything else came from ``extra=`` (set by ``setup_once``).
_STANDARD_ATTRIBUTES: frozenset[str] = frozenset()
_ignored_loggers: set[str] = {LOGGER_NAME}
#: Terminal escape sequences (colours, cursor moves, titles) that servers put in their log lines.
_ANSI = LazyPattern(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_reentry = threading.local()


def ignore_logger(name: str) -> None:
    """Never turn records of the logger ``name`` (and its children) into breadcrumbs or events."""
    _ignored_loggers.add(name)


def _ignored(name: str) -> bool:
    return any(name == ignored or name.startswith(ignored + ".") for ignored in _ignored_loggers)


def mark_reported(error: BaseException) -> None:
    """Records logged later with ``error`` as ``exc_info`` become no event: it was reported already.

    Servers and frameworks log the exception of a failed request after the SDK's web layer
    reported it (Flask's ``Exception on /path``, Django's ``django.request``, uvicorn's
    ``Exception in ASGI application``). Such a record still becomes a breadcrumb.
    """
    with contextlib.suppress(AttributeError, TypeError):  # exceptions with __slots__ cannot be marked
        setattr(error, _REPORTED, True)


def _reported(record: logging.LogRecord) -> bool:
    exc_info = record.exc_info
    return bool(exc_info) and getattr(exc_info[1], _REPORTED, False) is True  # type: ignore[index]


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (ANSI colour codes and the like)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def _level_name(levelno: int) -> str:
    for threshold, name in _LEVELS.items():
        if levelno >= threshold:
            return name
    return "debug"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES and k != SKIP_ATTRIBUTE}


class LoggingIntegration(Integration):
    """Records at ``level`` and above become breadcrumbs; at ``event_level`` and above, events.

    ``None`` turns either off. A record with ``exc_info`` becomes an exception event
    (mechanism ``logging``, handled). The SDK's own ``sentry_feedback`` logger is never
    captured, nor loggers passed to :func:`ignore_logger`, nor a record logged with
    ``extra={"sentry_feedback_skip": True}``. Records are seen whatever handlers the
    application configured (``Logger.callHandlers`` is wrapped), but only once they pass
    the logger's level.
    """

    identifier: ClassVar[str] = "logging"
    #: Set up when the application imports ``logging`` (at ``init`` if it did already).
    patches: ClassVar[str | None] = "logging"

    def __init__(self, *, level: int | None = _INFO, event_level: int | None = _ERROR) -> None:
        self.level = level
        self.event_level = event_level

    def setup_once(self) -> None:
        """Wrap ``logging.Logger.callHandlers``."""
        import logging

        global _STANDARD_ATTRIBUTES
        _STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
        original = logging.Logger.callHandlers

        def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
            try:
                original(logger, record)
            finally:
                _observe(record)

        logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign,assignment]

    def handle(self, record: logging.LogRecord) -> None:
        """Turn ``record`` into an event and/or a breadcrumb according to the levels."""
        from .._context import get_client

        client = get_client()
        if self.event_level is not None and record.levelno >= self.event_level and not _reported(record):
            client.capture_event(*self._event(record))
        if self.level is not None and record.levelno >= self.level:
            crumb: dict[str, Any] = {
                "type": "log",
                "category": record.name,
                "level": _level_name(record.levelno),
                "message": strip_ansi(record.getMessage()),
                "timestamp": record.created,
            }
            data = _extras(record)
            if data:
                crumb["data"] = data
            client.add_breadcrumb(crumb, {"log_record": record})

    def _event(self, record: logging.LogRecord) -> tuple[Event, dict[str, Any]]:
        from .._context import get_client

        client = get_client()
        hint: dict[str, Any] = {"log_record": record}
        exc_info = record.exc_info
        if exc_info and exc_info[1] is not None:
            event = client.event_from_exception(exc_info[1], handled=True, mechanism_type="logging")
            hint["exc_info"] = exc_info
        else:
            event = {}
            if client.options.attach_stacktrace:
                threads = client.current_thread_stacktrace(sys._getframe(0))
                if threads["values"][0]["stacktrace"]["frames"]:
                    event["threads"] = threads
        message = record.msg if isinstance(record.msg, str) else repr(record.msg)
        logentry: dict[str, Any] = {"message": strip_ansi(message), "formatted": strip_ansi(record.getMessage())}
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            logentry["params"] = [a if isinstance(a, (str, int, float, bool)) else repr(a) for a in args]
        event["logentry"] = logentry
        event["logger"] = record.name
        event["level"] = _level_name(record.levelno)
        extras = _extras(record)
        if extras:
            event["extra"] = extras
        return event, hint


def _observe(record: logging.LogRecord) -> None:
    if (
        getattr(_reentry, "active", False)
        or getattr(record, SKIP_ATTRIBUTE, False)
        or _ignored(record.name)
        # Records logged while the SDK sends (urllib3's, say) are about the SDK, not the app.
        or record.threadName == WORKER_THREAD_NAME
    ):
        return
    from .._context import get_client

    integration = get_client().get_integration(LoggingIntegration)
    if integration is None:
        return
    _reentry.active = True
    try:
        integration.handle(record)
    except Exception:  # a logging call must never fail because of the SDK
        logger.debug("could not process a log record", exc_info=True)
    finally:
        _reentry.active = False
