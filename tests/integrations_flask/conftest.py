"""Fixtures of the Flask integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sentry_feedback._web import restore_outer_scopes

pytest.importorskip("flask")


@pytest.fixture(autouse=True)
def _outer_scopes_restored() -> Iterator[None]:
    """Put back the scopes a request left active for its error handler, as the next request would."""
    yield
    restore_outer_scopes()
