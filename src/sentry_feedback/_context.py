"""Which scopes and which client are active, kept in ``contextvars``.

Each thread and each asyncio task sees its own active scopes: a fork made with
:func:`with_scope` or :func:`with_isolation_scope` is visible only inside the ``with``
block of the thread or task that made it. Outside any fork, everything uses the
process's root isolation and current scopes.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar

from ._scope import Scope
from ._tracing import PropagationContext

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager

    from ._client import Client

__all__ = [
    "get_client",
    "get_current_scope",
    "get_global_scope",
    "get_isolation_scope",
    "set_client",
    "use_isolation_scope",
    "use_scope",
    "with_isolation_scope",
    "with_scope",
]

_current_var: ContextVar[Scope | None] = ContextVar("sentry_feedback.current_scope", default=None)
_isolation_var: ContextVar[Scope | None] = ContextVar("sentry_feedback.isolation_scope", default=None)


def _roots() -> tuple[Scope, Scope, Scope]:
    isolation = Scope()
    isolation.set_propagation_context(PropagationContext())
    return Scope(), isolation, Scope()


_global_scope, _root_isolation, _root_current = _roots()


def _reset_roots_in_child() -> None:
    # A forked child starts a trace of its own; its scope data is inherited as a copy.
    global _root_isolation
    _root_isolation = _root_isolation.fork()
    _root_isolation.set_propagation_context(PropagationContext())
    _root_isolation._session = None  # the parent's session is the parent's


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reset_roots_in_child)


def get_global_scope() -> Scope:
    """The process-wide scope: its data goes on every event."""
    return _global_scope


def get_isolation_scope() -> Scope:
    """The isolation scope of the running request or task (the process root outside any)."""
    return _isolation_var.get() or _root_isolation


def get_current_scope() -> Scope:
    """The innermost scope, as forked by :func:`with_scope`."""
    return _current_var.get() or _root_current


@contextmanager
def _activate(var: ContextVar[Scope | None], scope: Scope) -> Iterator[Scope]:
    token = var.set(scope)
    try:
        yield scope
    finally:
        var.reset(token)


def with_scope() -> AbstractContextManager[Scope]:
    """Fork the current scope for the ``with`` block and yield the fork.

    >>> with with_scope() as scope:
    ...     scope.set_tag("page", "checkout")
    """
    return _activate(_current_var, get_current_scope().fork())


@contextmanager
def with_isolation_scope() -> Iterator[Scope]:
    """Fork the isolation scope (and the current scope) for one request or task; yield the isolation fork."""
    # The current scope is forked after the isolation scope is active, as a nested block would.
    with (
        _activate(_isolation_var, get_isolation_scope().fork()) as isolation,
        _activate(_current_var, get_current_scope().fork()),
    ):
        yield isolation


def use_scope(scope: Scope) -> AbstractContextManager[Scope]:
    """Make ``scope`` the current scope for the ``with`` block (without forking it)."""
    return _activate(_current_var, scope)


def use_isolation_scope(scope: Scope) -> AbstractContextManager[Scope]:
    """Make ``scope`` the isolation scope for the ``with`` block (without forking it)."""
    return _activate(_isolation_var, scope)


# -- the active client -----------------------------------------------------------------------

_client: Client | None = None
_disabled: Client | None = None


def get_client() -> Client:
    """The client set by :func:`init`, or a disabled client that sends nothing."""
    global _disabled
    if _client is not None:
        return _client
    if _disabled is None:
        from ._client import Client

        _disabled = Client.disabled()
    return _disabled


def set_client(client: Client | None) -> None:
    """Make ``client`` the one the top-level functions use (``init`` does this for you)."""
    global _client
    _client = client
