"""Regular expressions compiled, and :mod:`re` imported, the first time they are used.

``import re`` costs a few milliseconds (it imports ``enum``, ``functools``, ...): the SDK's
patterns are needed only to read incoming headers and user input, never to import or
initialize the SDK.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Iterator

__all__: list[str] = []


class LazyPattern:
    """``re.compile(source, flags)``, made on first use; has the pattern methods the SDK uses."""

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def pattern(self) -> str:
        """The source of the pattern (``re.Pattern.pattern``), without compiling it."""
        return self._source

    @property
    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern."""
        compiled = self._compiled
        if compiled is None:
            import re

            compiled = self._compiled = re.compile(self._source, self._flags)
        return compiled

    def match(self, text: str) -> re.Match[str] | None:
        """``re.Pattern.match``."""
        return self.compiled.match(text)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        """``re.Pattern.fullmatch``."""
        return self.compiled.fullmatch(text)

    def search(self, text: str) -> re.Match[str] | None:
        """``re.Pattern.search``."""
        return self.compiled.search(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """``re.Pattern.finditer``."""
        return self.compiled.finditer(text)

    def sub(self, replacement: str, text: str) -> str:
        """``re.Pattern.sub``."""
        return self.compiled.sub(replacement, text)
