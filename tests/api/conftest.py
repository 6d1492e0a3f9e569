"""Fixtures of the API client tests: the project's server, a scripted server, and clients of both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sentry_feedback.api import FeedbackApi
from sentry_feedback.server import LocalReceiver

from .scripted import ScriptedServer

TOKEN = "sntrys_write_0123456789abcdef0123456789abcdef"
READ_TOKEN = "sntrys_read_fedcba9876543210fedcba9876543210"
ORG = "acme"
PROJECT = "web"


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    """The project's own server: org ``acme``, project ``web``, a read+write and a read-only token."""
    with LocalReceiver(org=ORG, project_slug=PROJECT, api_token=TOKEN, read_token=READ_TOKEN) as server:
        yield server


@pytest.fixture
def api(receiver: LocalReceiver) -> Iterator[FeedbackApi]:
    """A client of ``receiver`` with the read+write token and no default project."""
    with FeedbackApi(receiver.url, TOKEN, ORG, timeout=5, max_retry_wait=0.01) as client:
        yield client


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """A scripted server (see :mod:`.scripted`)."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def sapi(scripted: ScriptedServer) -> Iterator[FeedbackApi]:
    """A client of ``scripted`` with project ``web``, 2 retries and tiny retry waits."""
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT, timeout=5, retries=2, max_retry_wait=0.01) as client:
        yield client
