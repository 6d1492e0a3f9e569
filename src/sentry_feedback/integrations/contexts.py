"""Runtime, OS and installed-packages data for every event."""

from __future__ import annotations

import os
import sys

from . import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

    from .._client import Client
    from .._types import Event, Hint

__all__ = ["ModulesIntegration", "OsIntegration", "RuntimeIntegration"]


#: ``platform.python_implementation()`` by ``sys.implementation.name``.
_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython", "jython": "Jython"}
_VERSION_CHARACTERS = frozenset("0123456789.+abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def _python_implementation_and_version() -> tuple[str, str]:
    """``platform.python_implementation()`` and ``platform.python_version()``.

    Read from ``sys`` where that gives the same answer (CPython, whose ``sys.version``
    starts with the version): ``platform`` imports ``re``, which ``init`` does not need.
    """
    name = _IMPLEMENTATIONS.get(sys.implementation.name)
    version = sys.version.partition(" ")[0]
    if name == "CPython" and version and _VERSION_CHARACTERS.issuperset(version):
        if version.count(".") == 1:
            version += ".0"  # as platform adds a missing patch level
        return name, version
    import platform

    return platform.python_implementation(), platform.python_version()


def _system_and_release() -> tuple[str, str]:
    """``platform.system()`` and ``platform.release()``, from ``os.uname()`` where they are its fields."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        system, _, release, _, _ = uname()
        if system and system not in ("unknown", "Microsoft", "OpenVMS") and release and release != "unknown":
            return system, release
    import platform

    return platform.system(), platform.release()


class RuntimeIntegration(Integration):
    """Adds ``contexts.runtime``: the Python implementation, version and build."""

    identifier: ClassVar[str] = "runtime"

    def setup(self, client: Client) -> None:
        """Give ``client``'s events the runtime context."""
        name, version = _python_implementation_and_version()
        client.set_default_context("runtime", {"name": name, "version": version, "build": sys.version})


class OsIntegration(Integration):
    """Adds ``contexts.os``: the operating system's name and release."""

    identifier: ClassVar[str] = "os"

    def setup(self, client: Client) -> None:
        """Give ``client``'s events the OS context."""
        name, release = _system_and_release()
        client.set_default_context("os", {"name": name, "version": release})


class ModulesIntegration(Integration):
    """Adds ``modules`` (installed distributions and their versions) to error and message events.

    The list is read once, on the first event that needs it, not at ``init``. Feedback
    events do not carry it.
    """

    identifier: ClassVar[str] = "modules"

    def __init__(self) -> None:
        self._modules: dict[str, str] | None = None

    def installed(self) -> dict[str, str]:
        """``{distribution name: version}`` of the installed packages (cached)."""
        if self._modules is None:
            from importlib import metadata

            modules: dict[str, str] = {}
            for dist in metadata.distributions():
                name = dist.metadata["Name"] if dist.metadata else None
                if name and dist.version:
                    modules[name.lower()] = dist.version
            self._modules = dict(sorted(modules.items()))
        return self._modules

    def setup(self, client: Client) -> None:
        """Register the processor on ``client``."""

        def add_modules(event: Event, hint: Hint) -> Event:
            if event.get("type") not in ("feedback", "transaction") and "modules" not in event:
                event["modules"] = self.installed()
            return event

        client.add_event_processor(add_modules)
