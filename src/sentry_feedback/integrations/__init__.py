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

import _imp
import _thread  # threading's locks and local, without importing threading (and functools, ...)
import sys

from .._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    import importlib.machinery
    from collections.abc import Callable, Iterable, Sequence
    from types import ModuleType
    from typing import Any, ClassVar

    from .._client import Client

__all__ = ["Integration", "auto_enabling_integrations", "default_integrations", "when_imported"]

_installed: set[str] = set()
_install_lock = _thread.allocate_lock()  # threading.Lock()


class Integration:
    """Base class of integrations. Subclasses set ``identifier`` and override what they need."""

    #: A short stable name, listed in the event's ``sdk.integrations``.
    identifier: ClassVar[str] = ""
    #: The top-level package ``setup_once`` patches (a framework), or ``None``. While it is
    #: installed but not imported yet, ``setup_once`` waits until it is: the application
    #: does not pay for importing frameworks it does not use.
    patches: ClassVar[str | None] = None

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

    The framework is looked up (:func:`_find_spec`), not imported; an integration module
    that fails to import is logged and left out.
    """
    found: list[Integration] = []
    for framework, module_name, class_name in AUTO_ENABLING:
        try:
            if _find_spec(framework) is None:
                continue
            qualified = f"{__name__}.{module_name}"
            __import__(qualified)
            found.append(getattr(sys.modules[qualified], class_name)())
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
                    if _installed_but_not_imported(integration.patches):
                        assert integration.patches is not None
                        when_imported(integration.patches, _deferred_setup_once(integration))
                    else:
                        integration.setup_once()
                    _installed.add(identifier)
            integration.setup(client)
        except Exception:
            logger.exception("could not set up the %s integration; it is disabled", identifier)
            continue
        enabled[identifier] = integration
    return enabled


def _installed_but_not_imported(name: str | None) -> bool:
    if name is None or name in sys.modules:
        return False
    try:
        return _find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _find_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """``importlib.util.find_spec(name)``, without importing ``importlib.util`` for a top-level name.

    Like the import system, asks each finder of ``sys.meta_path`` in turn (but not the
    SDK's own :class:`_ImportWatcher`), under the import lock. A dotted name goes to
    ``importlib.util``.
    """
    if "." in name:
        import importlib.util

        return importlib.util.find_spec(name)
    if name in sys.modules:
        module = sys.modules[name]
        if module is None:
            return None
        spec: importlib.machinery.ModuleSpec | None = getattr(module, "__spec__", None)
        if spec is None:
            raise ValueError(f"{name}.__spec__ is None or not set")
        return spec
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None or isinstance(finder, _ImportWatcher):
            continue
        _imp.acquire_lock()
        try:
            spec = find(name, None)
        finally:
            _imp.release_lock()
        if spec is not None:
            return spec
    return None


def _deferred_setup_once(integration: Integration) -> Callable[[ModuleType], None]:
    def setup_once(module: ModuleType) -> None:
        try:
            integration.setup_once()
        except Exception:
            logger.exception("could not set up the %s integration once %s was imported", integration.identifier, module)

    return setup_once


# -- running code when a module is first imported ---------------------------------------------------

_hooks: dict[str, list[Callable[[ModuleType], None]]] = {}
_hooks_lock = _thread.RLock()  # threading.RLock()


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once the module ``name`` is imported: now if it is, else right after.

    The callback runs on the importing thread, after the module's code ran, before the
    ``import`` statement returns. An exception in it is logged, never raised into the import.
    """
    with _hooks_lock:
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(callback)
            if not any(isinstance(finder, _ImportWatcher) for finder in sys.meta_path):
                sys.meta_path.insert(0, _ImportWatcher())
            return
    _call(callback, module)


def _call(callback: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        callback(module)
    except Exception:
        logger.exception("a hook for the import of %s failed", module.__name__)


class _ImportWatcher:
    """A ``sys.meta_path`` finder that finds nothing itself: it wraps the loader of a watched module
    so the hooks run after it executed. (No ``importlib.abc`` base: importing it costs milliseconds.)"""

    _finding = _thread._local()  # threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _hooks or getattr(self._finding, "name", None) == fullname:
            return None
        self._finding.name = fullname  # the real finders below answer the question
        try:
            spec = _find_spec(fullname)
        except (ImportError, ValueError):
            return None
        finally:
            self._finding.name = None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _HookedLoader(spec.loader)  # type: ignore[assignment]  # a Loader by its methods
        return spec


class _HookedLoader:
    """The module's own loader, and the hooks after its ``exec_module``; then it steps aside."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its own loader (``importlib.resources`` and friends read it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        with _hooks_lock:
            callbacks = _hooks.pop(module.__name__, [])
        for callback in callbacks:
            _call(callback, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
