"""Integrations: small, optional pieces that hook the SDK into Python and libraries.

Each integration has a stable ``identifier``. ``setup_once()`` installs process-wide
hooks (it runs once per process per identifier, whatever the number of clients);
``setup(client)`` runs for every client that enables the integration, typically to add
an event processor. Hooks installed by ``setup_once`` look up the active client's
instance with ``get_client().get_integration(...)`` and do nothing when it is absent,
so a client without the integration is never affected.

The default integrations (``default_integrations=True``): ``runtime``, ``os``,
``modules``, ``dedupe``, ``logging``, ``excepthook`` and ``threading``. With
``auto_enabling_integrations=True`` (the default) the integration of each web framework that
can be imported is enabled too (``flask``, ``starlette``, ``fastapi``, ``django``);
``disabled_integrations`` removes any of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["Integration", "auto_enabling_integrations", "default_integrations"]

logger = logging.getLogger("sentry_feedback")

_installed: set[str] = set()
_install_lock = threading.Lock()


class Integration:
    """Base class of integrations. Subclasses set ``identifier`` and override what they need."""

    #: A short stable name, listed in the event's ``sdk.integrations``.
    identifier: ClassVar[str] = ""

    def setup_once(self) -> None:
        """Install process-wide hooks. Runs once per process for this ``identifier``."""

    def setup(self, client: Client) -> None:
        """Per-client setup, e.g. ``client.add_event_processor(...)``. Runs for each client."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identifier!r}>"


def default_integrations() -> list[Integration]:
    """New instances of the integrations enabled by ``default_integrations=True``."""
    from .contexts import ModulesIntegration, OsIntegration, RuntimeIntegration
    from .dedupe import DedupeIntegration
    from .excepthook import ExcepthookIntegration, ThreadingIntegration
    from .logging import LoggingIntegration

    return [
        RuntimeIntegration(),
        OsIntegration(),
        ModulesIntegration(),
        DedupeIntegration(),
        LoggingIntegration(),
        ExcepthookIntegration(),
        ThreadingIntegration(),
    ]


#: The framework integrations ``auto_enabling_integrations=True`` enables: the framework's
#: top-level module, then the integration's module (in this package) and class.
AUTO_ENABLING: tuple[tuple[str, str, str], ...] = (
    ("flask", "flask", "FlaskIntegration"),
    ("starlette", "starlette", "StarletteIntegration"),
    ("fastapi", "fastapi", "FastApiIntegration"),
    ("django", "django", "DjangoIntegration"),
)


def auto_enabling_integrations() -> list[Integration]:
    """New instances of the framework integrations whose framework can be imported.

    The framework is looked up (``importlib.util.find_spec``), not imported; an
    integration module that fails to import is logged and left out.
    """
    found: list[Integration] = []
    for framework, module_name, class_name in AUTO_ENABLING:
        try:
            if importlib.util.find_spec(framework) is None:
                continue
            module = importlib.import_module(f"{__name__}.{module_name}")
            found.append(getattr(module, class_name)())
        except Exception:
            logger.debug("the %s integration is not available", framework, exc_info=True)
    return found


def without_disabled(
    integrations: list[Integration], disabled: Iterable[type[Integration] | Integration]
) -> list[Integration]:
    """``integrations`` without those whose identifier is one of ``disabled``'s."""
    identifiers = {entry.identifier for entry in disabled}
    return [integration for integration in integrations if integration.identifier not in identifiers]


def setup_integrations(client: Client, integrations: list[Integration]) -> dict[str, Integration]:
    """Run ``setup_once`` (first time per process) and ``setup`` for each; return them by identifier.

    A later integration with the same identifier replaces an earlier one (so a configured
    instance passed in ``integrations=`` replaces the default one). An integration whose
    setup raises is logged and left out.
    """
    chosen: dict[str, Integration] = {}
    for integration in integrations:
        if not integration.identifier:
            logger.error("integration %r has no identifier; ignored", integration)
            continue
        chosen[integration.identifier] = integration
    enabled: dict[str, Integration] = {}
    for identifier, integration in chosen.items():
        try:
            with _install_lock:
                if identifier not in _installed:
                    integration.setup_once()
                    _installed.add(identifier)
            integration.setup(client)
        except Exception:
            logger.exception("could not set up the %s integration; it is disabled", identifier)
            continue
        enabled[identifier] = integration
    return enabled
