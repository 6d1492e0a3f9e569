from __future__ import annotations

from collections.abc import Iterator

import pytest

# The fixtures users get too: sentry_receiver, sentry_init, mock_transport.
pytest_plugins = ["sentry_feedback.testing"]


@pytest.fixture(autouse=True)
def _pristine_sdk() -> Iterator[None]:
    from sentry_feedback.testing import reset

    reset()
    yield
    reset()
