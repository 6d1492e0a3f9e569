"""``Link`` headers (RFC 8288) as Sentry writes them for pagination: ``rel``, ``results`` and ``cursor``."""

from __future__ import annotations

import builtins
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import NamedTuple


class Link(NamedTuple):
    """One link of a ``Link`` header: its URL and its parameters (names lowercased).

    >>> parse_link_header('<https://x/?cursor=1>; rel="next"; results="true"; cursor="1"')[0].rel
    'next'
    """

    url: str
    params: Mapping[str, str]

    @property
    def rel(self) -> str | None:
        """The ``rel`` parameter, or None."""
        return self.params.get("rel")

    @property
    def results(self) -> bool | None:
        """Sentry's ``results`` parameter as a bool (None when absent or not true/false)."""
        value = self.params.get("results", "").strip().lower()
        return True if value == "true" else False if value == "false" else None

    @property
    def cursor(self) -> str | None:
        """Sentry's ``cursor`` parameter, else the URL's ``cursor`` query parameter, else None."""
        if "cursor" in self.params:
            return self.params["cursor"]
        values = urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query).get("cursor")
        return values[0] if values else None


def parse_link_header(value: str) -> builtins.list[Link]:
    """Parse an RFC 8288 ``Link`` header the way Sentry writes it; never raises.

    Links are separated by commas; a comma inside ``<...>`` or inside a quoted parameter
    value does not split them. Parameter values may be quoted (with ``\\`` escapes) or
    bare. Text that is not a link is skipped.

    >>> parse_link_header('<https://h/?a=1,2>; rel="next"; results="false"; cursor="0:10:0"')
    [Link(url='https://h/?a=1,2', params={'rel': 'next', 'results': 'false', 'cursor': '0:10:0'})]
    """
    links: builtins.list[Link] = []
    text = value if isinstance(value, str) else ""
    pos, end = 0, len(text)
    while pos < end:
        start = text.find("<", pos)
        if start < 0:
            break
        close = text.find(">", start + 1)
        if close < 0:
            break
        url = text[start + 1 : close].strip()
        params: dict[str, str] = {}
        pos = close + 1
        while pos < end:  # parameters: ; name[=value]
            while pos < end and text[pos] in " \t":
                pos += 1
            if pos >= end or text[pos] == ",":
                pos += 1
                break
            if text[pos] != ";":  # junk: skip to the next link
                next_link = text.find(",", pos)
                pos = end if next_link < 0 else next_link + 1
                break
            pos += 1
            name_start = pos
            while pos < end and text[pos] not in "=;,":
                pos += 1
            name = text[name_start:pos].strip().lower()
            param_value = ""
            if pos < end and text[pos] == "=":
                pos += 1
                while pos < end and text[pos] in " \t":
                    pos += 1
                if pos < end and text[pos] == '"':
                    pos += 1
                    chars: builtins.list[str] = []
                    while pos < end and text[pos] != '"':
                        if text[pos] == "\\" and pos + 1 < end:
                            pos += 1
                        chars.append(text[pos])
                        pos += 1
                    pos += 1  # the closing quote
                    param_value = "".join(chars)
                else:
                    value_start = pos
                    while pos < end and text[pos] not in ";,":
                        pos += 1
                    param_value = text[value_start:pos].strip()
            if name and name not in params:
                params[name] = param_value
        links.append(Link(url, params))
    return links


def _find_link(links: Sequence[Link], rel: str) -> Link | None:
    for link in links:
        if rel in (link.rel or "").lower().split():
            return link
    return None
