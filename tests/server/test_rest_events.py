"""Stored events through the REST API: by project, and Sentry's event-id lookup (over real HTTP)."""

from __future__ import annotations

import json

import pytest
import urllib3

import sentry_feedback
from sentry_feedback.api import FeedbackApi, NotFound
from sentry_feedback.server import LocalReceiver


def test_an_error_is_found_by_its_id_alone() -> None:
    with LocalReceiver(org="acme", project_slug="shop") as receiver:
        client = sentry_feedback.init(dsn=receiver.dsn)
        try:
            try:
                raise ValueError("card declined")
            except ValueError:
                error_id = sentry_feedback.capture_exception()
            feedback_id = sentry_feedback.send_feedback("It broke", associated_event_id=error_id, timeout=10)
        finally:
            client.close(5)
        http = urllib3.PoolManager()
        headers = {"Authorization": f"Bearer {receiver.api_token}"}
        found = http.request("GET", f"{receiver.api_url}/organizations/acme/eventids/{error_id}/", headers=headers)
        body = json.loads(found.data)
        assert (found.status, body["projectSlug"], body["eventId"]) == (200, "shop", error_id)
        assert body["event"]["metadata"] == {"type": "ValueError", "value": "card declined"}
        found = http.request("GET", f"{receiver.api_url}/organizations/acme/eventids/{feedback_id}/", headers=headers)
        assert (found.status, json.loads(found.data)["event"]["type"]) == (200, "feedback")
        for missing in ("0" * 32, "not-an-id", "' OR 1=1 --"):
            url = f"{receiver.api_url}/organizations/acme/eventids/{missing}/"
            assert http.request("GET", url, headers=headers).status == 404
        assert http.request("GET", f"{receiver.api_url}/organizations/acme/eventids/{error_id}/").status == 401

        with FeedbackApi(receiver.url, receiver.api_token, "acme") as api:
            assert api.event(error_id)["title"] == "ValueError: card declined"
            assert api.event(api.get(feedback_id).error_ids[0])["eventID"] == error_id
            with pytest.raises(NotFound):
                api.event("f" * 32)
