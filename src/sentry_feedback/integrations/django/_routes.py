"""Transaction names of Django requests: the URL pattern that matched, or the view's dotted path."""

from __future__ import annotations

import functools

from ..._lazy import LazyPattern

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["readable_regex", "route_of", "view_path"]


def route_of(match: Any) -> str | None:
    """The URL pattern of a ``ResolverMatch``: ``/orders/<int:order_id>/pay``, regular expressions made readable."""
    import importlib

    regex_pattern = importlib.import_module("django.urls.resolvers").RegexPattern
    chain = _matched_chain(match)
    if chain is not None:
        counter = [0]
        parts = []
        for resolver in chain:
            pattern = resolver.pattern
            text = str(pattern)
            parts.append(readable_regex(text, counter) if isinstance(pattern, regex_pattern) else text)
        route = "".join(parts)
    else:  # a resolver of the application's own: Django's joined route, if any
        joined = getattr(match, "route", None)
        if not isinstance(joined, str):
            return None
        regex_like = joined.startswith("^") or joined.endswith("$") or "(?" in joined or "\\" in joined
        route = readable_regex(joined, [0]) if regex_like else joined
    return "/" + route.lstrip("/")


def _matched_chain(match: Any) -> list[Any] | None:
    """The resolvers and the pattern that matched, outermost first (the last entry of ``tried``)."""
    tried = getattr(match, "tried", None)
    if isinstance(tried, list) and tried:
        chain = tried[-1]
        if isinstance(chain, list) and chain and getattr(chain[-1], "callback", None) is match.func:
            return chain
    return None


def view_path(view: Any) -> str | None:
    """The dotted path of a view: ``shop.views.pay``, the class of a class-based view."""
    target = getattr(view, "view_class", None) or view
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    module = getattr(target, "__module__", None)
    if not isinstance(name, str):  # an instance with __call__
        name, module = type(target).__qualname__, type(target).__module__
    return f"{module}.{name}" if isinstance(module, str) and module else name


_QUANTIFIER = LazyPattern(r"(?:[?*+]|\{\d*(?:,\d*)?\})[?+]?")
_NAMED_GROUP = LazyPattern(r"\?P<(\w+)>")


def readable_regex(regex: str, counter: list[int]) -> str:
    """A URL regular expression as a route: anchors and quantifiers dropped, groups as ``<name>``.

    ``^articles/(?P<year>[0-9]{4})/(\\d+)/$`` gives ``articles/<year>/<arg1>/``;
    ``counter`` numbers the unnamed groups across the pieces of one route.
    """
    out: list[str] = []
    i, size = 0, len(regex)
    while i < size:
        char = regex[i]
        if char == "\\":
            escaped = regex[i + 1 : i + 2]
            if escaped and not escaped.isalnum():
                out.append(escaped)
            elif escaped not in ("A", "Z", "z", "b", "B"):
                out.append(regex[i : i + 2])
            i += 2
        elif char in "^$":
            i += 1
        elif char == "(":
            end = _closing(regex, i)
            out.append(_group(regex[i + 1 : end], counter))
            i = end + 1
        elif char == "[":
            end = _class_end(regex, i)
            out.append(regex[i : end + 1])
            i = end + 1
        else:
            quantifier = _QUANTIFIER.compiled.match(regex, i)
            if quantifier is not None:
                i = quantifier.end()
            else:
                out.append(char)
                i += 1
    return "".join(out)


def _group(inner: str, counter: list[int]) -> str:
    named = _NAMED_GROUP.match(inner)
    if named is not None:
        return f"<{named.group(1)}>"
    if inner.startswith("?:"):
        return readable_regex(inner[2:], counter)
    if inner.startswith("?"):  # a lookaround, a back reference, flags or a comment: no text of its own
        return ""
    counter[0] += 1
    return f"<arg{counter[0]}>"


def _closing(regex: str, start: int) -> int:
    """The index of the ``)`` closing the group opened at ``start`` (the end for an unbalanced one)."""
    depth, i = 0, start
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(regex, i) + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(regex)


def _class_end(regex: str, start: int) -> int:
    """The index of the ``]`` closing the character class opened at ``start``."""
    i = start + 1
    if regex[i : i + 1] == "^":
        i += 1
    if regex[i : i + 1] == "]":  # a literal ] first in the class
        i += 1
    while i < len(regex):
        if regex[i] == "\\":
            i += 2
            continue
        if regex[i] == "]":
            return i
        i += 1
    return len(regex)
