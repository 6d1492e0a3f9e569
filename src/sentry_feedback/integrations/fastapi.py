"""FastAPI: the Starlette integration, named ``fastapi`` (``FastAPI`` is a ``Starlette`` subclass).

>>> import sentry_feedback
>>> from sentry_feedback.integrations.fastapi import FastApiIntegration
>>> sentry_feedback.init(dsn=..., integrations=[FastApiIntegration()])

See the "FastAPI and Starlette" page of the documentation. This module imports FastAPI only
when the integration is set up.
"""

from __future__ import annotations

from .starlette import StarletteIntegration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

__all__ = ["FastApiIntegration"]


class FastApiIntegration(StarletteIntegration):
    """:class:`~sentry_feedback.integrations.starlette.StarletteIntegration` for FastAPI applications.

    It takes the same options and does the same: every application (FastAPI's and plain
    Starlette ones) runs in the ASGI middleware, transactions are named after the route
    (with the prefixes of included routers and mounts) or the endpoint, and unhandled
    errors are captured once with mechanism ``starlette``, as sentry-python reports them.
    Enabling either integration is enough. With both enabled, a request is handled once:
    FastAPI applications use this one's options, other Starlette applications the
    ``starlette`` one's.
    """

    identifier: ClassVar[str] = "fastapi"
    patches: ClassVar[str | None] = "fastapi"

    def setup_once(self) -> None:
        """Check that FastAPI can be imported, then install the Starlette integration's hooks."""
        import fastapi  # noqa: F401  (without FastAPI the integration is left out, logged)

        super().setup_once()
