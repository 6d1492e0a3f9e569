"""The URLs of the in-process tests (``ROOT_URLCONF``), with the project's ``handler500``."""

from __future__ import annotations

from django.urls import include, path, re_path

from . import views

orders = [path("<int:order_id>/pay", views.pay)]
api = [
    path("orders/", include(orders)),
    re_path(r"^archive/(?P<year>[0-9]{4})/(\d+)/$", views.archive),
]

urlpatterns = [
    path("orders/<int:order_id>/pay", views.pay),
    path("users/<int:user_id>/feedback", views.feedback),
    path("api/v1/", include(api)),
    re_path(r"^legacy/(?P<slug>[-\w]+)/?$", views.feedback),
    path("cbv/<int:pk>", views.OrderView.as_view()),
    path("named", views.named),
    path("together/<str:user>", views.together),
    path("stream", views.stream),
    path("stream-async", views.stream_async),
    path("logged", views.logged),
    path("whoami", views.whoami),
    path("replace-user", views.replace_user),
    path("broken-user", views.broken_user),
    path("form", views.echo_form),
    path("async/<int:order_id>/feedback", views.async_feedback),
    path("async/<int:order_id>/pay", views.async_pay),
    path("async/together/<str:user>", views.async_together),
]

handler404 = "integrations_django.views.not_found"
handler500 = "integrations_django.views.server_error"
