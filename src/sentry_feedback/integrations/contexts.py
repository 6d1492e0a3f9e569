"""Runtime, OS and installed-packages data for every event."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, ClassVar

from . import Integration

if TYPE_CHECKING:
    from .._client import Client
    from .._types import Event, Hint

__all__ = ["ModulesIntegration", "OsIntegration", "RuntimeIntegration"]


class RuntimeIntegration(Integration):
    """Adds ``contexts.runtime``: the Python implementation, version and build."""

    identifier: ClassVar[str] = "runtime"

    def setup(self, client: Client) -> None:
        """Give ``client``'s events the runtime context."""
        runtime = {"name": platform.python_implementation(), "version": platform.python_version(), "build": sys.version}
        client.set_default_context("runtime", runtime)


class OsIntegration(Integration):
    """Adds ``contexts.os``: the operating system's name and release."""

    identifier: ClassVar[str] = "os"

    def setup(self, client: Client) -> None:
        """Give ``client``'s events the OS context."""
        client.set_default_context("os", {"name": platform.system(), "version": platform.release()})


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
            if event.get("type") != "feedback" and "modules" not in event:
                event["modules"] = self.installed()
            return event

        client.add_event_processor(add_modules)
