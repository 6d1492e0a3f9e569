"""Fixtures of the Django integration tests: Django configured in-process, once, with ``urls.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sentry_feedback._web import restore_outer_scopes

pytest.importorskip("django")

import django
from django.conf import settings

SETTINGS = {
    "DEBUG": False,  # handler500 renders the error page, as in production
    "SECRET_KEY": "integrations-django-tests",
    "ROOT_URLCONF": "integrations_django.urls",
    "ALLOWED_HOSTS": ["testserver", "127.0.0.1", "localhost"],
    "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    "USE_TZ": True,
}

if not settings.configured:
    settings.configure(**SETTINGS)
    django.setup()


@pytest.fixture(autouse=True)
def _outer_scopes_restored() -> Iterator[None]:
    """Put back the scopes a request left active for its error handler, as the next request would."""
    yield
    restore_outer_scopes()


@pytest.fixture(scope="session")
def database() -> None:
    """The tables of auth, contenttypes and sessions, in this thread's in-memory SQLite database."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
