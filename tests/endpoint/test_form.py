"""The embeddable form's HTML, and its script and style sheet shipped in the package."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from importlib import resources

import pytest

import sentry_feedback
from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint, feedback_form_html

Init = Callable[..., sentry_feedback.Client]


def hidden(form: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_the_default_form(sentry_init: Init) -> None:
    sentry_init()
    form = feedback_form_html(associated_event_id="32FD1995-636D-4463-8501-6E2747623E11")
    assert '<form class="sentry-feedback" id="sentry-feedback" method="post" action="/feedback"' in form
    assert 'enctype="multipart/form-data"' in form and "data-sentry-feedback" in form
    assert hidden(form)["associated_event_id"] == "32fd1995636d446385016e2747623e11"
    assert re.fullmatch(r"[0-9a-f]{32}-[0-9a-f]{16}", hidden(form)["sentry_trace"])
    assert "sentry-trace_id=" in hidden(form)["baggage"]
    assert hidden(form)["url"] == ""
    # Every control has a label; the status is announced.
    for control in ("message", "name", "email", "attachments"):
        assert f'<label for="sentry-feedback-{control}">' in form
        assert f'id="sentry-feedback-{control}"' in form
    assert 'role="status" aria-live="polite"' in form
    assert 'maxlength="4096"' in form and " required" in form
    assert 'type="file" multiple accept="image/png,.png,image/jpeg,.jpg,.jpeg,' in form
    assert '<link rel="stylesheet" href="/feedback/form.css">' in form
    assert form.rstrip().endswith('<script src="/feedback/form.js" defer></script>')
    # Nothing inline that a Content-Security-Policy would block.
    assert " style=" not in form and not re.search(r"\son[a-z]+=", form) and "<script>" not in form


def test_values_are_escaped(sentry_init: Init) -> None:
    sentry_init()
    form = feedback_form_html(
        '/feedback?a=1&b="><script>',
        nonce='n"><x',
        id_prefix='p"><x',
        heading="<b>Help</b>",
        script_src="/static/f.js?v=1&x=2",
    )
    assert "<script>" not in form.replace('<script src="/static/f.js?v=1&amp;x=2" defer nonce="n&quot;&gt;&lt;x">', "")
    assert 'action="/feedback?a=1&amp;b=&quot;&gt;&lt;script&gt;"' in form
    assert "&lt;b&gt;Help&lt;/b&gt;" in form
    assert 'id="p&quot;&gt;&lt;x-message"' in form


def test_options(sentry_init: Init, caplog: pytest.LogCaptureFixture) -> None:
    sentry_init()
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        form = feedback_form_html(
            "/api/feedback/",
            associated_event_id="<not an id>",
            script_src="",
            stylesheet_href="",
            include_trace=False,
            max_attachments=0,
        )
    assert hidden(form) == {"associated_event_id": "", "url": ""}
    assert "not an event id" in caplog.text
    assert "<script" not in form and "<link" not in form and 'type="file"' not in form
    one = feedback_form_html("/api/feedback/", max_attachments=1)
    assert 'src="/api/feedback/form.js"' in one
    assert 'type="file" accept=' in one and "multiple" not in one


def test_the_endpoint_fills_in_its_limits(sentry_init: Init) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint(
        EndpointOptions(max_message_length=500, max_attachments=3, allowed_content_types=("image/png", "text/plain"))
    )
    form = endpoint.form_html("/feedback", associated_event_id=None, nonce="abc")
    assert 'maxlength="500"' in form
    assert 'accept="image/png,.png,text/plain,.txt,.log" data-max-files="3"' in form
    assert 'nonce="abc"' in form


def test_static_files_are_in_the_package() -> None:
    static = resources.files("sentry_feedback.endpoint").joinpath("static")
    script = static.joinpath("form.js").read_text("utf-8")
    assert "form[data-sentry-feedback]" in script
    # No outside requests and no dynamic code.
    assert not re.search(r"https?://", script)
    assert "eval(" not in script and "innerHTML" not in script
    assert ".sentry-feedback" in static.joinpath("form.css").read_text("utf-8")
    assert "url(" not in static.joinpath("form.css").read_text("utf-8")
