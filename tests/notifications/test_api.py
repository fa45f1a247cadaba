"""Merchant API of notifications: preferences, credentials (write-only, encrypted), delivery
figures; scopes (a 403 changes nothing) and tenant isolation (another shop's data never shows)."""

import pytest
from django.db import connection

from apps.core.models import AuditLog
from apps.notifications.models import Notification, NotificationPreference, NotificationSettings, State
from apps.notifications.services import notify
from tests.factories import StaffMemberFactory
from tests.notifications.support import SLACK_WEBHOOK, subscribed_customer
from tests.shopify_helpers import auth_header

pytestmark = pytest.mark.django_db

PREFERENCES = "/v1/api/notifications/preferences"
SETTINGS = "/v1/api/notifications/settings"
STATS = "/v1/api/notifications/stats"


@pytest.fixture
def rival(other_merchant):
    """Beta Gadgets switched badges off and has a failed notification of its own."""
    merchant = other_merchant["merchant"]
    NotificationPreference.objects.create(merchant=merchant, type="badge_earned", channel="email", enabled=False)
    NotificationSettings.objects.create(merchant=merchant, klaviyo_private_key="pk_rival_secret")
    [row, _sms] = notify(
        merchant=merchant,
        type="badge_earned",
        customer=other_merchant["customers"][0],
        context={"badge": "Rival badge"},
        idempotency_key="rival",
    )
    Notification.objects.filter(pk=row.pk).update(state=State.FAILED, last_error="rival failure")
    return other_merchant


def test_preferences_list_every_type_and_channel_on_by_default_and_ignore_other_shops(api, owner, rival):
    response = api.get(PREFERENCES, **auth_header(owner))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    badge_email = next(p for p in body["preferences"] if (p["type"], p["channel"]) == ("badge_earned", "email"))
    assert badge_email["enabled"] is True  # the rival's switch is its own
    assert {p["channel"] for p in body["preferences"]} == {"email", "sms", "slack"}


def test_a_merchant_switches_a_type_off_for_one_channel(api, owner, rival):
    response = api.put(
        PREFERENCES,
        {"preferences": [{"type": "streak_earned", "channel": "sms", "enabled": False}]},
        format="json",
        **auth_header(owner),
    )

    assert response.status_code == 200
    stored = NotificationPreference.objects.get(merchant=owner.merchant, type="streak_earned", channel="sms")
    assert stored.enabled is False
    audit = AuditLog.objects.get(merchant=owner.merchant, action="notification_preferences_updated")
    assert audit.actor == owner
    assert NotificationPreference.objects.filter(merchant=rival["merchant"]).count() == 1


def test_unknown_types_and_channels_a_type_does_not_use_are_refused(api, owner, rival):
    for item in (
        {"type": "nope", "channel": "email", "enabled": False},
        {"type": "beta_feature_released", "channel": "sms", "enabled": False},
        {"type": "badge_earned", "channel": "email", "enabled": False, "extra": 1},
    ):
        response = api.put(PREFERENCES, {"preferences": [item]}, format="json", **auth_header(owner))
        assert response.status_code == 400, item
        assert response.json()["status"] == "error"
    assert not NotificationPreference.objects.filter(merchant=owner.merchant).exists()


def test_staff_without_the_scope_get_403_and_nothing_changes(api, merchant, rival):
    support = StaffMemberFactory(merchant=merchant, role="support")

    responses = [
        api.put(
            PREFERENCES,
            {"preferences": [{"type": "badge_earned", "channel": "email", "enabled": False}]},
            format="json",
            **auth_header(support),
        ),
        api.put(SETTINGS, {"klaviyo_private_key": "pk_evil"}, format="json", **auth_header(support)),
        api.get(STATS, **auth_header(support)),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert responses[0].json()["error"]["code"] == "permission_denied"
    assert not NotificationPreference.objects.filter(merchant=merchant).exists()
    assert not NotificationSettings.objects.filter(merchant=merchant).exists()
    assert not AuditLog.objects.filter(merchant=merchant).exists()


def test_credentials_are_write_only_and_encrypted_at_rest(api, owner, rival):
    response = api.put(
        SETTINGS,
        {"klaviyo_private_key": "pk_live_secret", "slack_webhook_url": SLACK_WEBHOOK},
        format="json",
        **auth_header(owner),
    )

    assert response.status_code == 200
    assert response.json()["connected"] == {"klaviyo": True, "postscript": False, "slack": True}
    assert "pk_live_secret" not in response.content.decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT klaviyo_private_key FROM notification_settings WHERE merchant_id = %s", [owner.merchant_id]
        )
        [stored] = cursor.fetchone()
    assert "pk_live_secret" not in stored
    assert NotificationSettings.objects.get(merchant=owner.merchant).klaviyo_private_key == "pk_live_secret"
    audit = AuditLog.objects.get(merchant=owner.merchant, action="notification_settings_updated")
    assert "pk_live_secret" not in str(audit.metadata) and SLACK_WEBHOOK not in str(audit.metadata)
    # The rival's connection is not ours to see.
    assert api.get(SETTINGS, **auth_header(owner)).json()["connected"]["klaviyo"] is True
    assert api.get(SETTINGS, **auth_header(rival["owner"])).json()["connected"]["slack"] is False


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T/B/X",
        "https://hooks.slack.com.evil.example/services/T/B/X",
        "https://127.0.0.1/services/T/B/X",
        "https://user:pw@hooks.slack.com/services/T/B/X",
        "https://hooks.slack.com:8443/services/T/B/X",
        "https://hooks.slack.com/api/other",
    ],
)
def test_only_hooks_slack_com_webhooks_are_accepted(api, owner, url):
    response = api.put(SETTINGS, {"slack_webhook_url": url}, format="json", **auth_header(owner))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_slack_webhook"
    assert not NotificationSettings.objects.filter(merchant=owner.merchant).exists()


def test_stats_show_delivery_rates_and_failures_of_this_shop_only(api, owner, rival):
    merchant = owner.merchant
    customer = subscribed_customer(merchant)
    rows = notify(
        merchant=merchant, type="streak_earned", customer=customer, context={"streak_count": 5}, idempotency_key="s"
    )
    Notification.objects.filter(pk=rows[0].pk).update(state=State.SENT)
    Notification.objects.filter(pk=rows[1].pk).update(state=State.FAILED, last_error="postscript answered HTTP 400")

    body = api.get(STATS, **auth_header(owner)).json()

    assert body["types"] == [
        {
            "type": "streak_earned",
            "label": "Purchase streak earned",
            "total": 2,
            "sent": 1,
            "failed": 1,
            "skipped": 0,
            "waiting": 0,
            "delivery_rate": 0.5,
        }
    ]
    assert [f["last_error"] for f in body["failures"]] == ["postscript answered HTTP 400"]
    assert "rival" not in str(body).lower()
