"""Arrangements shared by the notification tests."""

from apps.notifications.delivery import notifications_claim, notifications_deliver
from apps.notifications.models import Notification, NotificationSettings
from tests.factories import CustomerFactory

SLACK_WEBHOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def connect_providers(merchant, **overrides) -> NotificationSettings:
    values = {
        "klaviyo_private_key": f"pk_{merchant.pk[-6:]}",
        "postscript_api_key": f"ps_{merchant.pk[-6:]}",
        "slack_webhook_url": SLACK_WEBHOOK,
        **overrides,
    }
    return NotificationSettings.objects.create(merchant=merchant, **values)


def subscribed_customer(merchant, **fields):
    values = {
        "email_marketing_consent": "subscribed",
        "sms_marketing_consent": "subscribed",
        "phone": "+15555550100",
        **fields,
    }
    return CustomerFactory(merchant=merchant, **values)


def deliver_due() -> dict[str, str]:
    """One relay run in this process: claim what is due and send it (what the worker does)."""
    return notifications_deliver(notification_ids=notifications_claim())


def reload(notification) -> Notification:
    return Notification.objects.get(pk=notification.pk)
