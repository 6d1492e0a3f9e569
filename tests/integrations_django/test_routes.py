"""How Django requests' transactions are named from URL patterns: patterns of the application's own,
partial and callable-object views, character classes and escapes in ``re_path`` patterns.

This module is the ``ROOT_URLCONF`` of its tests (``urlpatterns`` below).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.test.utils import override_settings
from django.urls import ResolverMatch, URLPattern, include, path, re_path
from django.urls.resolvers import RegexPattern, RoutePattern
from hypothesis import given, settings
from hypothesis import strategies as st

import sentry_feedback
from integrations_web.direct import stored
from sentry_feedback.integrations.django import DjangoIntegration
from sentry_feedback.integrations.django._routes import readable_regex
from sentry_feedback.server import LocalReceiver

from . import views

Init = Callable[..., sentry_feedback.Client]

#: The paths the views wrapped by ``CountedPattern`` were called for.
counted: list[str] = []


class CountedPattern(URLPattern):
    """A URL pattern of the application's own: it wraps the view of each match (to count the calls)."""

    def resolve(self, path: str) -> ResolverMatch | None:
        match = super().resolve(path)
        if match is not None:
            view = match.func

            def counting(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                counted.append(request.path)
                response: HttpResponse = view(request, *args, **kwargs)
                return response

            match.func = counting
        return match


class RoutelessPattern(CountedPattern):
    """Like ``CountedPattern``, but its matches carry no route at all."""

    def resolve(self, path: str) -> ResolverMatch | None:
        match = super().resolve(path)
        if match is not None:
            match.route = None  # type: ignore[assignment]
        return match


class Dispatcher:
    """A view that is an object with ``__call__``, not a function or a class-based view."""

    def __call__(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return views.feedback(request)


urlpatterns = [
    CountedPattern(RoutePattern("counted/<int:pk>", is_endpoint=True), views.feedback),
    CountedPattern(RegexPattern(r"^counted-legacy/(?P<pk>\d+)/$", is_endpoint=True), views.feedback),
    path("api/", include([CountedPattern(RoutePattern("items/<slug:slug>", is_endpoint=True), views.feedback)])),
    RoutelessPattern(RoutePattern("routeless/<int:pk>", is_endpoint=True), views.feedback),
    path("partial/<int:pk>", functools.partial(views.feedback)),
    path("callable", Dispatcher()),
    re_path(r"^files/\d+/[^/]+/$", views.archive),
    re_path(r"^tags/[]a-z]+/$", views.archive),
    re_path(r"^v(\d+)/", include([re_path(r"^items/(\d+)$", views.archive)])),
]


def get(url: str) -> None:
    with override_settings(ROOT_URLCONF=__name__):
        answer = Client(raise_request_exception=False).get(url)
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize(
    ("url", "name", "calls"),
    [
        ("/counted/7", "/counted/<int:pk>", ["/counted/7"]),
        ("/counted-legacy/7/", "/counted-legacy/<pk>/", ["/counted-legacy/7/"]),
        ("/api/items/summer-sale", "/api/items/<slug:slug>", ["/api/items/summer-sale"]),
    ],
)
def test_a_pattern_of_the_application_s_own_is_named_by_django_s_joined_route(
    sentry_init: Init, sentry_receiver: LocalReceiver, url: str, name: str, calls: list[str]
) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    counted.clear()
    get(url)
    _, (feedback,) = stored(sentry_receiver)
    assert counted == calls  # the application's wrapper ran
    assert feedback.data["transaction"] == name
    assert feedback.data["transaction_info"] == {"source": "route"}


def test_a_match_without_any_route_keeps_the_path(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    counted.clear()
    get("/routeless/5")
    _, (feedback,) = stored(sentry_receiver)
    assert counted == ["/routeless/5"]
    assert feedback.data["transaction"] == "/routeless/5"
    assert feedback.data["transaction_info"] == {"source": "url"}


@pytest.mark.parametrize(
    ("url", "route", "view"),
    [
        ("/partial/3", "/partial/<int:pk>", "integrations_django.views.feedback"),
        ("/callable", "/callable", f"{__name__}.Dispatcher"),
    ],
)
@pytest.mark.parametrize("style", ["url", "function_name"])
def test_partial_and_callable_object_views(
    sentry_init: Init, sentry_receiver: LocalReceiver, url: str, route: str, view: str, style: str
) -> None:
    sentry_init(integrations=[DjangoIntegration(transaction_style=style)])
    get(url)
    _, (feedback,) = stored(sentry_receiver)
    expected = (route, "route") if style == "url" else (view, "component")
    assert (feedback.data["transaction"], feedback.data["transaction_info"]["source"]) == expected


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/files/12/report.pdf/", r"/files/\d/[^/]/"),  # escapes and classes kept, quantifiers dropped
        ("/tags/]summer/", "/tags/[]a-z]/"),  # a literal ] first in a class
        ("/v2/items/9", "/v<arg1>/items/<arg2>"),  # unnamed groups numbered across include()
    ],
)
def test_re_path_patterns_become_readable_routes(
    sentry_init: Init, sentry_receiver: LocalReceiver, url: str, name: str
) -> None:
    sentry_init(integrations=[DjangoIntegration()])
    get(url)
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.data["transaction"] == name
    assert feedback.data["transaction_info"] == {"source": "route"}


@pytest.mark.parametrize(
    ("regex", "readable"),
    [
        (r"^bad/[a-z", "bad/[a-z"),  # a class never closed: kept to the end
        (r"^bad/(?P<open>[a-z", "bad/<open>"),
        (r"^neg/[^]x]+/$", "neg/[^]x]/"),
        (r"^esc/[\]]+/$", r"esc/[\]]/"),
        (r"^\Apage\b\d{2,4}\Z", r"page\d"),
        ("^trailing\\", "trailing\\"),  # a lone backslash at the end is kept
    ],
)
def test_readable_regex_of_odd_patterns(regex: str, readable: str) -> None:
    assert readable_regex(regex, [0]) == readable


_LITERAL = st.text(alphabet="abcxyz0189-_/.~", max_size=8)
_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_LITERAL, _NAME), max_size=4), _LITERAL)
def test_readable_regex_of_literals_and_named_groups(pieces: list[tuple[str, str]], tail: str) -> None:
    regex = "^" + "".join(f"{re.escape(text)}(?P<{name}>[^/]+)" for text, name in pieces) + re.escape(tail) + "/?$"
    expected = "".join(f"{text}<{name}>" for text, name in pieces) + tail + "/"
    assert readable_regex(regex, [0]) == expected


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="<"), max_size=40))
def test_readable_regex_never_fails_and_keeps_plain_text(text: str) -> None:
    counter = [0]
    result = readable_regex(text, counter)
    assert isinstance(result, str)
    assert counter[0] == result.count("<arg")  # each unnamed group is numbered once (no "<": no named ones)
    plain = "".join(ch for ch in text if ch not in "\\^$()[]?*+{}")
    assert readable_regex(plain, [0]) == plain
