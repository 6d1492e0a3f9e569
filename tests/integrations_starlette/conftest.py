"""Fixtures of the Starlette and FastAPI integration tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from sentry_feedback._web import restore_outer_scopes

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    # Recent Starlette asks for httpx2 instead of httpx; both work for these tests.
    warnings.simplefilter("ignore", UserWarning)
    import starlette.testclient  # noqa: F401


@pytest.fixture(autouse=True)
def _outer_scopes_restored() -> Iterator[None]:
    """Put back the scopes a request left active for its error handler, as the next request would."""
    yield
    restore_outer_scopes()
