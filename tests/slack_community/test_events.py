"""`POST /slack/events`: Slack's signature (signing secret, 5-minute window) before anything is
read; member_joined_channel / member_left_channel move a member to active / inactive."""

import json
import time

import pytest
from django.test import Client

from apps.core.models import AuditLog
from apps.slack_community.models import SlackCommunityMember, SlackCommunityUser

from .conftest import SIGNING_SECRET, event_body, signed_headers

EVENTS = "/slack/events"


@pytest.fixture
def client():
    return Client()


def _member(merchant, slack_user_id, status="invited"):
    member = SlackCommunityMember.objects.create(merchant=merchant, slack_user_id=slack_user_id, status=status)
    SlackCommunityUser.objects.create(slack_user_id=slack_user_id, merchant=merchant, community_id=member.pk)
    return member


def _post(client, body, headers):
    return client.post(EVENTS, data=body, content_type="application/json", **headers)


def test_url_verification_answers_the_challenge_when_signed(client, settings):
    settings.SLACK_COMMUNITY_SIGNING_SECRET = SIGNING_SECRET
    body = json.dumps(
        {"type": "url_verification", "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    ).encode()

    response = _post(client, body, signed_headers(body))

    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_joined_and_left_events_change_only_that_member(client, settings, merchant, other_merchant):
    settings.SLACK_COMMUNITY_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_COMMUNITY_CHANNEL_IDS = ["C0COMMUNITY"]
    ours = _member(merchant, "U0ALPHA1234")
    theirs = _member(other_merchant["merchant"], "U0BETA56789")

    joined = event_body("member_joined_channel", "U0ALPHA1234", "C0COMMUNITY")
    assert _post(client, joined, signed_headers(joined)).status_code == 200
    assert _post(client, joined, signed_headers(joined)).status_code == 200  # Slack's retry: no change

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.status == "active" and ours.joined_at is not None
    assert theirs.status == "invited"
    assert AuditLog.objects.filter(merchant=merchant, action="slack_member_status_changed").count() == 1

    left = event_body("member_left_channel", "U0ALPHA1234", "C0COMMUNITY")
    assert _post(client, left, signed_headers(left)).status_code == 200
    ours.refresh_from_db()
    assert ours.status == "inactive" and ours.left_at is not None
    assert not AuditLog.objects.filter(merchant=other_merchant["merchant"]).exists()


def test_events_of_other_channels_or_unknown_people_change_nothing(client, settings, merchant):
    settings.SLACK_COMMUNITY_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_COMMUNITY_CHANNEL_IDS = ["C0COMMUNITY"]
    ours = _member(merchant, "U0ALPHA1234")

    for body in (
        event_body("member_joined_channel", "U0ALPHA1234", "C0RANDOM99"),
        event_body("member_joined_channel", "U0STRANGER1", "C0COMMUNITY"),
    ):
        assert _post(client, body, signed_headers(body)).status_code == 200

    ours.refresh_from_db()
    assert ours.status == "invited"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: {}, id="unsigned"),
        pytest.param(lambda body: signed_headers(body, secret="not-the-secret"), id="wrong-secret"),
        pytest.param(lambda body: signed_headers(body, timestamp=int(time.time()) - 301), id="older-than-5-minutes"),
        pytest.param(lambda body: signed_headers(body + b" "), id="body-changed"),
        pytest.param(
            lambda body: {**signed_headers(body), "HTTP_X_SLACK_SIGNATURE": "v0=" + "0" * 64}, id="forged-signature"
        ),
    ],
)
def test_mis_signed_events_are_401_and_change_nothing(client, settings, merchant, headers):
    settings.SLACK_COMMUNITY_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_COMMUNITY_CHANNEL_IDS = ["C0COMMUNITY"]
    ours = _member(merchant, "U0ALPHA1234")
    body = event_body("member_joined_channel", "U0ALPHA1234", "C0COMMUNITY")

    response = _post(client, body, headers(body))

    assert response.status_code == 401
    ours.refresh_from_db()
    assert ours.status == "invited"


def test_without_a_signing_secret_every_event_is_refused(client, settings, merchant):
    settings.SLACK_COMMUNITY_SIGNING_SECRET = ""
    body = json.dumps({"type": "url_verification", "challenge": "abc"}).encode()

    assert _post(client, body, signed_headers(body, secret="")).status_code == 401


def test_a_signed_body_that_is_not_json_is_400(client, settings):
    settings.SLACK_COMMUNITY_SIGNING_SECRET = SIGNING_SECRET
    body = b"not json"

    assert _post(client, body, signed_headers(body)).status_code == 400
