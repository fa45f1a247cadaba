"""`POST /v1/api/slack/join` against the fake Collective workspace (slack-sdk over loopback)."""

import json

import pytest
from django.utils import translation

from apps.core.models import AuditLog
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from apps.notifications.models import Notification
from apps.slack_community.models import MemberStatus, SlackCommunityMember, SlackCommunityUser
from apps.slack_community.services import SlackUserNotFound
from tests.shopify_helpers import auth_header

from .conftest import CHANNELS

JOIN = "/v1/api/slack/join"
MEMBER = "U0ALPHA1234"


def _join(api, staff, slack_user_id=MEMBER, **extra):
    body = {"slack_user_id": slack_user_id, "locale": "en", **extra}
    return api.post(JOIN, data=body, format="json", **auth_header(staff))


def _other_members(other_merchant):
    return SlackCommunityMember.objects.filter(merchant=other_merchant["merchant"])


@pytest.fixture
def other_member(other_merchant):
    return SlackCommunityMember.objects.create(
        merchant=other_merchant["merchant"], slack_user_id="U0BETA56789", beta_features={"streaks": True}
    )


def test_join_invites_to_every_channel_and_answers_as_the_seeds(
    api, owner, merchant, other_merchant, other_member, slack, django_capture_on_commit_callbacks
):
    slack.add_member(MEMBER)

    with django_capture_on_commit_callbacks(execute=True):
        response = _join(api, owner, merchant_id=merchant.pk)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    assert body["community_id"].startswith("com_") and body["member_status"] == "invited"
    member = SlackCommunityMember.objects.get(pk=body["community_id"])
    assert (member.merchant, member.slack_user_id, member.status, member.staff) == (
        merchant,
        MEMBER,
        MemberStatus.INVITED,
        owner,
    )
    assert all(MEMBER in slack.channels[c] for c in CHANNELS)
    # The bot token went to Slack; users.info checked the member first.
    assert slack.calls_of("users.info") and len(slack.calls_of("conversations.invite")) == 2
    assert all(r.headers["Authorization"] == "Bearer xoxb-test-collective" for r in slack.calls_of("users.info"))
    audit = AuditLog.objects.get(merchant=merchant, action="slack_joined")
    assert audit.metadata == {"slack_user_id": MEMBER, "community_id": member.pk} and audit.actor == owner
    entries = get_redis().xrevrange(stream_name(merchant.pk, f"slack:{merchant.pk}"), count=1)
    assert json.loads(entries[0][1]["data"])["status"] == "invited"
    onboarding = Notification.objects.get(merchant=merchant, type="slack_joined")
    assert onboarding.channel == "slack" and onboarding.locale == "en"
    assert SlackCommunityUser.objects.get(slack_user_id=MEMBER).merchant == merchant
    # Nothing of the other merchant changed or leaked.
    assert list(_other_members(other_merchant)) == [other_member]
    assert other_member.slack_user_id not in json.dumps(body)
    assert not AuditLog.objects.filter(merchant=other_merchant["merchant"], action="slack_joined").exists()


def test_already_in_channel_is_active_at_once_and_joining_again_is_harmless(api, owner, merchant, slack):
    slack.add_member(MEMBER)
    for channel in CHANNELS:
        slack.channels[channel] = {MEMBER}

    first = _join(api, owner)
    again = _join(api, owner)

    assert first.status_code == 200 and first.json()["member_status"] == "active"
    assert again.json()["community_id"] == first.json()["community_id"]
    assert SlackCommunityMember.objects.filter(merchant=merchant).count() == 1
    assert SlackCommunityMember.objects.get(merchant=merchant).joined_at is not None
    assert AuditLog.objects.filter(merchant=merchant, action="slack_joined").count() == 1


def test_user_not_found_is_a_localized_400_and_stores_nothing(api, owner, merchant, slack):
    response = _join(api, owner, slack_user_id="U0NOBODY123", locale="de")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "user_not_found"
    with translation.override("de"):
        assert error["message"] == str(SlackUserNotFound.default_message)
    assert not SlackCommunityMember.objects.filter(merchant=merchant).exists()
    assert not SlackCommunityUser.objects.exists()
    assert not slack.calls_of("conversations.invite")


@pytest.mark.parametrize("bad", ["alpha", "u0alpha1234", "C0CHANNEL12", "U12", "U0ALPHA1234; DROP", ""])
def test_a_malformed_slack_user_id_is_refused_before_calling_slack(api, owner, merchant, slack, bad):
    response = _join(api, owner, slack_user_id=bad)

    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid_slack_user_id", "validation_error")
    assert not slack.requests and not SlackCommunityMember.objects.exists()


def test_unknown_fields_and_another_merchants_id_are_refused(api, owner, merchant, other_merchant, slack):
    slack.add_member(MEMBER)

    unknown = _join(api, owner, channel="C0SECRET")
    foreign = _join(api, owner, merchant_id=other_merchant["merchant"].pk)

    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "validation_error"
    assert foreign.status_code == 404
    assert not SlackCommunityMember.objects.exists() and not slack.requests


def test_a_slack_member_of_another_store_is_a_409(api, owner, merchant, other_merchant, slack):
    slack.add_member(MEMBER)
    other_owner = other_merchant["owner"]
    assert _join(api, other_owner).status_code == 200

    response = _join(api, owner)

    assert response.status_code == 409 and response.json()["error"]["code"] == "slack_user_taken"
    assert not SlackCommunityMember.objects.filter(merchant=merchant).exists()


def test_without_admin_community_it_is_403_and_nothing_changes(api, support, merchant, slack):
    slack.add_member(MEMBER)

    response = _join(api, support)

    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert not SlackCommunityMember.objects.exists() and not slack.requests
    assert not AuditLog.objects.filter(action="slack_joined").exists()


def test_rate_limited_keeps_the_member_invited_and_retries_after_retry_after(
    api, owner, merchant, slack, django_capture_on_commit_callbacks
):
    from apps.slack_community.tasks import slack_community_invite_task

    slack.add_member(MEMBER)
    slack.answer((200, {"ok": True, "user": slack.members[MEMBER]}, {}))
    slack.answer((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _join(api, owner)

    assert response.status_code == 202 and response["Retry-After"] == "7"
    member = SlackCommunityMember.objects.get(merchant=merchant)
    assert member.status == "invited" and member.last_error == "ratelimited"
    assert callbacks  # the retry is queued after commit
    # The retry (what the worker runs after 7 s) completes the invite.
    assert slack_community_invite_task(merchant_id=merchant.pk, community_id=member.pk, attempt=1) == "invited"
    member.refresh_from_db()
    assert member.last_error == "" and all(MEMBER in slack.channels[c] for c in CHANNELS)


def test_slack_down_opens_the_breaker_and_then_no_call_reaches_slack(api, owner, merchant, slack, settings):
    from apps.notifications import breakers

    settings.NOTIFICATIONS_BREAKER_FAIL_MAX = 2
    breakers._breakers.clear()
    for index in range(2):
        slack.add_member(f"U0DOWN{index:05d}")
        slack.answer((503, {"ok": False, "error": "service_unavailable"}, {}))
        response = _join(api, owner, slack_user_id=f"U0DOWN{index:05d}")
        assert response.status_code == 202
    calls = len(slack.requests)

    response = _join(api, owner, slack_user_id="U0DOWN00009")

    assert response.status_code == 202
    assert len(slack.requests) == calls  # the circuit is open: Slack was not called
    member = SlackCommunityMember.objects.get(merchant=merchant, slack_user_id="U0DOWN00009")
    assert member.status == "invited" and member.last_error == "circuit_open"


def test_the_admin_token_uses_admin_conversations_invite(api, owner, merchant, slack, settings):
    from tests.fakes.slack_api import ADMIN_TOKEN

    settings.SLACK_COMMUNITY_ADMIN_TOKEN = ADMIN_TOKEN
    slack.add_member(MEMBER)

    assert _join(api, owner).status_code == 200

    assert len(slack.calls_of("admin.conversations.invite")) == 2 and not slack.calls_of("conversations.invite")


def test_idempotency_key_replays_the_answer(api, owner, merchant, slack):
    slack.add_member(MEMBER)
    headers = {**auth_header(owner), "HTTP_IDEMPOTENCY_KEY": "join-1"}

    first = api.post(JOIN, data={"slack_user_id": MEMBER}, format="json", **headers)
    second = api.post(JOIN, data={"slack_user_id": MEMBER}, format="json", **headers)

    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert SlackCommunityMember.objects.count() == 1


def test_the_onboarding_message_reaches_the_merchants_slack_in_its_locale(
    api, owner, merchant, other_merchant, slack, django_capture_on_commit_callbacks
):
    from tests.notifications.support import SLACK_WEBHOOK, connect_providers, deliver_due

    connect_providers(merchant)
    slack.add_member(MEMBER)
    with django_capture_on_commit_callbacks(execute=True):
        assert _join(api, owner, locale="ja").status_code == 200

    deliver_due()

    onboarding = Notification.objects.get(merchant=merchant, type="slack_joined")
    assert onboarding.locale == "ja" and onboarding.state == "sent"
    posted = [r for r in slack.requests if r.path.startswith("/services/")]
    assert [r.path for r in posted] == [SLACK_WEBHOOK.removeprefix("https://hooks.slack.com")]
    assert "Alpha Pets" in posted[0].json()["text"] and "LoyalNest Collective" in posted[0].json()["text"]
    assert not Notification.objects.filter(merchant=other_merchant["merchant"]).exists()


def test_a_member_who_left_can_join_again(api, owner, merchant, slack):
    slack.add_member(MEMBER)
    first = _join(api, owner).json()["community_id"]
    SlackCommunityMember.objects.filter(pk=first).update(status="inactive")
    for channel in CHANNELS:
        slack.channels[channel].discard(MEMBER)

    again = _join(api, owner)

    assert again.json()["community_id"] == first and again.json()["member_status"] == "invited"
    assert all(MEMBER in slack.channels[c] for c in CHANNELS)


def test_without_a_configured_community_join_is_503(api, owner, merchant, slack, settings):
    settings.SLACK_COMMUNITY_CHANNEL_IDS = []
    slack.add_member(MEMBER)

    response = _join(api, owner)

    assert response.status_code == 503 and response.json()["error"]["code"] == "community_unavailable"
    assert not SlackCommunityMember.objects.exists() and not slack.requests
