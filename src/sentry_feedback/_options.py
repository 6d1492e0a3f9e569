"""Client options: one frozen, validated object built once at ``init``."""

from __future__ import annotations

import math
import os

from ._dsn import Dsn
from ._record import FACTORY, Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._envelope import Envelope
    from ._scrubber import EventScrubber
    from ._transport import Transport
    from ._types import BeforeSend
    from .integrations import Integration

#: Values of ``SENTRY_DEBUG`` that turn ``debug`` on.
_TRUTHY = frozenset({"1", "true", "yes", "on"})
#: Options that take a sequence; ``build`` turns lists into tuples so Options stays hashable and frozen.
_SEQUENCE_OPTIONS = ("in_app_include", "in_app_exclude", "ignore_errors", "integrations", "disabled_integrations")

__all__ = ["Options", "RetryPolicy"]


class RetryPolicy(Frozen):
    """How envelopes that hit a network error are retried: exponential backoff with jitter.

    Attempt ``n`` (1-based) waits ``min(initial * 2 ** (n - 1), maximum)`` seconds, give or
    take ``jitter`` (a fraction). After ``max_attempts`` sends an envelope is given up:
    counted as ``network_error``, or, with ``cache_dir``, left on disk for the next start.
    Frozen and validated when made (``ValueError``).

    >>> RetryPolicy(max_attempts=3).delay(2) <= 2.0 * 1.25
    True
    """

    __slots__ = _fields = ("max_attempts", "initial", "maximum", "jitter")

    #: Sends of an envelope at most (1: no retry).
    max_attempts: int
    #: Seconds to wait after the first failed send.
    initial: float
    #: The longest wait, in seconds.
    maximum: float
    #: How much a wait varies, as a fraction of it (0 to 1).
    jitter: float

    def __init__(
        self, max_attempts: int = 4, initial: float = 1.0, maximum: float = 30.0, jitter: float = 0.25
    ) -> None:
        object.__setattr__(self, "max_attempts", max_attempts)
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "maximum", maximum)
        object.__setattr__(self, "jitter", jitter)
        _check_int("retry.max_attempts", self.max_attempts, 1, MAX_RETRY_ATTEMPTS)
        _check_number("retry.initial", self.initial, 0.0, MAX_WAIT)
        _check_number("retry.maximum", self.maximum, 0.0, MAX_WAIT)
        _check_number("retry.jitter", self.jitter, 0.0, 1.0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed send."""
        import random

        base: float = min(self.initial * 2.0 ** max(attempt - 1, 0), self.maximum)
        return max(base * (1.0 + self.jitter * (2.0 * random.random() - 1.0)), 0.0)


MiB = 1024 * 1024
GiB = 1024 * MiB
#: Upper bounds of the options that size queues, waits and reads: past these a value is a
#: mistake (and some would overflow a thread wait or a socket timeout), so init rejects it.
MAX_WAIT = 3600.0
MAX_HTTP_TIMEOUT = 600.0
MAX_BREADCRUMBS = 1000
MAX_QUEUE_SIZE = 100_000
MAX_CACHE_ITEMS = 100_000
MAX_ATTACHMENT_SIZE = GiB
MAX_RETRY_ATTEMPTS = 100
MAX_SPANS = 100_000


class Options(Frozen):
    """Everything ``init`` accepts, validated once. Read it as ``get_client().options``.

    See the options reference in the docs for each field. Build one with
    :meth:`Options.build`, which applies environment variables and defaults and raises
    ``TypeError`` for an unknown option and ``ValueError`` for a bad value.
    Frozen (assigning a field raises ``dataclasses.FrozenInstanceError``) and hashable.
    """

    __slots__ = _fields = (
        "dsn",
        "release",
        "environment",
        "dist",
        "server_name",
        "debug",
        "sample_rate",
        "before_send",
        "before_send_feedback",
        "max_breadcrumbs",
        "send_default_pii",
        "send_client_reports",
        "transport",
        "transport_queue_size",
        "shutdown_timeout",
        "http_timeout",
        "compression_level",
        "ca_certs",
        "max_attachment_size",
        "in_app_include",
        "in_app_exclude",
        "include_local_variables",
        "include_source_context",
        "attach_stacktrace",
        "ignore_errors",
        "before_breadcrumb",
        "integrations",
        "default_integrations",
        "auto_enabling_integrations",
        "disabled_integrations",
        "event_scrubber",
        "cache_dir",
        "max_cache_items",
        "retry",
        "http_proxy",
        "https_proxy",
        "cert_file",
        "key_file",
        "keep_alive",
        "spotlight",
        "traces_sample_rate",
        "traces_sampler",
        "before_send_transaction",
        "max_spans",
        "auto_session_tracking",
        "session_mode",
    )
    _hidden = frozenset({"transport"})

    dsn: Dsn | None
    release: str | None
    environment: str
    dist: str | None
    server_name: str | None
    debug: bool
    sample_rate: float
    before_send: BeforeSend | None
    before_send_feedback: BeforeSend | None
    max_breadcrumbs: int
    send_default_pii: bool
    send_client_reports: bool
    transport: Transport | type[Transport] | Callable[[Envelope], object] | None
    transport_queue_size: int
    shutdown_timeout: float
    http_timeout: float
    compression_level: int
    ca_certs: str | None
    max_attachment_size: int
    in_app_include: tuple[str, ...]
    in_app_exclude: tuple[str, ...]
    include_local_variables: bool
    include_source_context: bool
    attach_stacktrace: bool
    ignore_errors: tuple[type[BaseException] | str, ...]
    before_breadcrumb: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] | None
    integrations: tuple[Integration, ...]
    default_integrations: bool
    auto_enabling_integrations: bool
    disabled_integrations: tuple[type[Integration] | Integration, ...]
    event_scrubber: EventScrubber | bool
    cache_dir: str | None
    max_cache_items: int
    retry: RetryPolicy
    http_proxy: str | None
    https_proxy: str | None
    cert_file: str | None
    key_file: str | None
    keep_alive: bool
    spotlight: bool | str
    traces_sample_rate: float | None
    traces_sampler: Callable[[dict[str, Any]], float | bool] | None
    before_send_transaction: BeforeSend | None
    max_spans: int
    auto_session_tracking: bool
    session_mode: str

    def __init__(
        self,
        dsn: Dsn | None = None,
        release: str | None = None,
        environment: str = "production",
        dist: str | None = None,
        server_name: str | None = None,
        debug: bool = False,
        sample_rate: float = 1.0,
        before_send: BeforeSend | None = None,
        before_send_feedback: BeforeSend | None = None,
        max_breadcrumbs: int = 100,
        send_default_pii: bool = False,
        send_client_reports: bool = True,
        transport: Transport | type[Transport] | Callable[[Envelope], object] | None = None,
        transport_queue_size: int = 100,
        shutdown_timeout: float = 2.0,
        http_timeout: float = 10.0,
        compression_level: int = 6,
        ca_certs: str | None = None,
        max_attachment_size: int = 100 * MiB,
        in_app_include: tuple[str, ...] = (),
        in_app_exclude: tuple[str, ...] = (),
        include_local_variables: bool = True,
        include_source_context: bool = True,
        attach_stacktrace: bool = False,
        ignore_errors: tuple[type[BaseException] | str, ...] = (),
        before_breadcrumb: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] | None = None,
        integrations: tuple[Integration, ...] = (),
        default_integrations: bool = True,
        auto_enabling_integrations: bool = True,
        disabled_integrations: tuple[type[Integration] | Integration, ...] = (),
        event_scrubber: EventScrubber | bool = True,
        cache_dir: str | None = None,
        max_cache_items: int = 100,
        retry: RetryPolicy = FACTORY,
        http_proxy: str | None = None,
        https_proxy: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        keep_alive: bool = True,
        spotlight: bool | str = False,
        traces_sample_rate: float | None = None,
        traces_sampler: Callable[[dict[str, Any]], float | bool] | None = None,
        before_send_transaction: BeforeSend | None = None,
        max_spans: int = 1000,
        auto_session_tracking: bool = True,
        session_mode: str = "request",
    ) -> None:
        values = locals()
        if retry is FACTORY:
            values["retry"] = RetryPolicy()
        for name in self._fields:
            object.__setattr__(self, name, values[name])
        self._validate()

    @classmethod
    def build(cls, dsn: str | Dsn | None = None, **options: Any) -> Options:
        """Validate ``options`` and fill in environment variables and defaults.

        ``dsn`` falls back to ``SENTRY_DSN``; ``release`` and ``environment`` fall back to
        ``SENTRY_RELEASE`` and ``SENTRY_ENVIRONMENT``, and ``debug`` to ``SENTRY_DEBUG``
        (``1``, ``true``, ``yes`` or ``on``, in any case). An empty DSN disables the SDK.
        """
        unknown = sorted(set(options).difference(cls._fields))
        if unknown:
            raise TypeError(f"unknown option(s) for sentry_feedback.init: {', '.join(map(repr, unknown))}")
        if "dsn" in options:
            raise TypeError("dsn given twice")
        if dsn is None:
            dsn = os.environ.get("SENTRY_DSN") or None
        parsed = dsn if isinstance(dsn, Dsn) or not dsn else Dsn.parse(dsn)
        if options.get("release") is None and os.environ.get("SENTRY_RELEASE"):
            options["release"] = os.environ["SENTRY_RELEASE"]
        if options.get("environment") is None:
            options["environment"] = os.environ.get("SENTRY_ENVIRONMENT") or "production"
        if options.get("debug") is None:
            options["debug"] = os.environ.get("SENTRY_DEBUG", "").strip().lower() in _TRUTHY
        for name in _SEQUENCE_OPTIONS:
            value = options.get(name)
            if value is not None and not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
                options[name] = tuple(value)
        return cls(dsn=parsed or None, **options)

    def _validate(self) -> None:
        for name in (
            "release",
            "environment",
            "dist",
            "server_name",
            "ca_certs",
            "cache_dir",
            "http_proxy",
            "https_proxy",
            "cert_file",
            "key_file",
        ):
            _check_type(name, getattr(self, name), (str, type(None)))
        for name in (
            "debug",
            "send_default_pii",
            "send_client_reports",
            "include_local_variables",
            "include_source_context",
            "attach_stacktrace",
            "default_integrations",
            "auto_enabling_integrations",
            "keep_alive",
            "auto_session_tracking",
        ):
            _check_type(name, getattr(self, name), (bool,))
        self._validate_sequences()
        for name in (
            "before_send",
            "before_send_feedback",
            "before_breadcrumb",
            "before_send_transaction",
            "traces_sampler",
        ):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"option {name!r} must be callable, not {type(value).__name__}")
        _check_number("sample_rate", self.sample_rate, 0.0, 1.0)
        if self.traces_sample_rate is not None:
            _check_number("traces_sample_rate", self.traces_sample_rate, 0.0, 1.0)
        _check_int("max_spans", self.max_spans, 0, MAX_SPANS)
        if self.session_mode not in ("request", "application"):
            raise ValueError(f"option 'session_mode' must be 'request' or 'application', not {self.session_mode!r}")
        _check_number("shutdown_timeout", self.shutdown_timeout, 0.0, MAX_WAIT)
        _check_number("http_timeout", self.http_timeout, 0.0, MAX_HTTP_TIMEOUT, open_low=True)
        _check_int("max_breadcrumbs", self.max_breadcrumbs, 0, MAX_BREADCRUMBS)
        _check_int("transport_queue_size", self.transport_queue_size, 1, MAX_QUEUE_SIZE)
        _check_int("compression_level", self.compression_level, 0, 9)
        _check_int("max_attachment_size", self.max_attachment_size, 0, MAX_ATTACHMENT_SIZE)
        _check_int("max_cache_items", self.max_cache_items, 1, MAX_CACHE_ITEMS)
        if not isinstance(self.retry, RetryPolicy):
            raise ValueError("option 'retry' must be a RetryPolicy")
        if not isinstance(self.spotlight, (bool, str)):
            raise ValueError("option 'spotlight' must be True, False or a URL")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("option 'key_file' needs 'cert_file'")
        for name in ("ca_certs", "cert_file", "key_file"):
            path = getattr(self, name)
            # Checked here: the files are read only when the background thread first connects.
            if path is not None and not os.access(path, os.R_OK):
                raise ValueError(f"option {name!r}: cannot read {path!r}")
        if self.transport is not None and not callable(self.transport) and not _is_transport(self.transport):
            raise ValueError("option 'transport' must be a Transport, a Transport subclass or a callable")

    def _validate_sequences(self) -> None:
        from ._scrubber import EventScrubber
        from .integrations import Integration

        for name in ("in_app_include", "in_app_exclude"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"option {name!r} must be a list of module names")
        if not isinstance(self.ignore_errors, tuple) or not all(
            isinstance(v, str) or (isinstance(v, type) and issubclass(v, BaseException)) for v in self.ignore_errors
        ):
            raise ValueError("option 'ignore_errors' must be a list of exception classes or class names")
        if not isinstance(self.integrations, tuple) or not all(isinstance(v, Integration) for v in self.integrations):
            raise ValueError("option 'integrations' must be a list of Integration instances")
        if not isinstance(self.disabled_integrations, tuple) or not all(
            isinstance(v, Integration) or (isinstance(v, type) and issubclass(v, Integration))
            for v in self.disabled_integrations
        ):
            raise ValueError("option 'disabled_integrations' must be a list of Integration classes or instances")
        if not isinstance(self.event_scrubber, (bool, EventScrubber)):
            raise ValueError("option 'event_scrubber' must be True, False or an EventScrubber")

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied and validated."""
        values = {name: getattr(self, name) for name in self._fields}
        return type(self)(**{**values, **changes})


def _is_transport(value: object) -> bool:
    from ._transport import Transport

    return isinstance(value, Transport)


def _check_type(name: str, value: object, types: tuple[type, ...]) -> None:
    if not isinstance(value, types):
        wanted = " or ".join("None" if t is type(None) else t.__name__ for t in types)
        raise ValueError(f"option {name!r} must be {wanted}, not {type(value).__name__}")


def _check_number(name: str, value: object, low: float, high: float | None, *, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"option {name!r} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < low or (open_low and value == low) or (high is not None and value > high):
        bound = f"> {low}" if open_low else f">= {low}"
        span = bound if high is None else f"{bound} and <= {high}" if open_low else f"between {low} and {high}"
        raise ValueError(f"option {name!r} must be {span}, not {value!r}")


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"option {name!r} must be an integer, not {type(value).__name__}")
    _check_number(name, value, low, high)


def check_timeout(value: object, name: str) -> float:
    """``value`` as seconds to wait: a finite number >= 0; ``ValueError`` naming ``name`` otherwise.

    Huge values are fine (waits are capped at ``threading.TIMEOUT_MAX``, about 292 years).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
    return float(value)
