"""Staff admin of the outbox: filters, the error shown, the audited retry action."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.core.models import AuditLog
from apps.notifications.models import Notification, NotificationSettings, State
from apps.notifications.services import notify
from tests.notifications.support import SLACK_WEBHOOK, subscribed_customer

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:notifications_notification_changelist")


@pytest.fixture
def outbox(merchant, other_merchant):
    """A failed email and a sent SMS at Alpha Pets, a failed email at Beta Gadgets."""
    rows = {}
    for shop, customer in (
        (merchant, subscribed_customer(merchant)),
        (other_merchant["merchant"], other_merchant["customers"][0]),
    ):
        email, sms = notify(
            merchant=shop, type="badge_earned", customer=customer, context={"badge": "Star"}, idempotency_key="b"
        )
        Notification.objects.filter(pk=email.pk).update(
            state=State.FAILED, attempts=4, last_error="klaviyo answered HTTP 500"
        )
        Notification.objects.filter(pk=sms.pk).update(state=State.SENT, attempts=1)
        rows[shop.shop_domain] = {"email": email, "sms": sms}
    return rows


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("ops", "ops@loyalnest.test", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="notifications", codename__in=["view_notification", "change_notification"]
        )
    )
    return user


def test_the_list_filters_by_state_channel_provider_and_merchant_and_shows_the_error(client, operator, outbox):
    client.force_login(operator)
    alpha_failed = outbox["alpha-pets.myshopify.com"]["email"]
    beta_failed = outbox["beta-gadgets.myshopify.com"]["email"]

    page = client.get(
        CHANGELIST,
        {"state": "failed", "channel": "email", "provider": "klaviyo", "merchant": "alpha-pets.myshopify.com"},
    )

    assert page.status_code == 200
    content = page.content.decode()
    assert alpha_failed.pk in content and beta_failed.pk not in content
    assert "klaviyo answered HTTP 500" in content
    assert outbox["alpha-pets.myshopify.com"]["sms"].pk not in content
    detail = client.get(reverse("admin:notifications_notification_change", args=[alpha_failed.pk]))
    assert detail.status_code == 200 and "klaviyo answered HTTP 500" in detail.content.decode()


def test_retry_puts_failed_rows_back_to_pending_and_audits_it(client, operator, outbox):
    client.force_login(operator)
    failed = outbox["alpha-pets.myshopify.com"]["email"]
    sent = outbox["alpha-pets.myshopify.com"]["sms"]

    response = client.post(CHANGELIST, {"action": "retry", "_selected_action": [failed.pk, sent.pk]}, follow=True)

    assert response.status_code == 200
    retried = Notification.objects.get(pk=failed.pk)
    assert (retried.state, retried.attempts, retried.last_error) == (State.PENDING, 0, "")
    assert Notification.objects.get(pk=sent.pk).state == State.SENT  # only failed rows are retried
    assert Notification.objects.get(pk=outbox["beta-gadgets.myshopify.com"]["email"].pk).state == State.FAILED
    audit = AuditLog.objects.get(action="notification_retried")
    assert (audit.merchant_id, audit.staff_user, audit.target_id) == (failed.merchant_id, operator, failed.pk)
    assert audit.metadata["previous_error"] == "klaviyo answered HTTP 500"


def test_staff_without_the_change_permission_cannot_retry(client, django_user_model, outbox):
    viewer = django_user_model.objects.create_user("viewer", "v@loyalnest.test", "pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_notification"))
    client.force_login(viewer)
    failed = outbox["alpha-pets.myshopify.com"]["email"]

    client.post(CHANGELIST, {"action": "retry", "_selected_action": [failed.pk]})

    assert Notification.objects.get(pk=failed.pk).state == State.FAILED
    assert not AuditLog.objects.filter(action="notification_retried").exists()


def test_provider_secrets_never_show_in_admin(admin_client, merchant):
    NotificationSettings.objects.create(
        merchant=merchant, klaviyo_private_key="pk_live_secret", slack_webhook_url=SLACK_WEBHOOK
    )

    listing = admin_client.get(reverse("admin:notifications_notificationsettings_changelist")).content.decode()
    row = NotificationSettings.objects.get(merchant=merchant)
    detail = admin_client.get(
        reverse("admin:notifications_notificationsettings_change", args=[row.pk])
    ).content.decode()

    for page in (listing, detail):
        assert "pk_live_secret" not in page and "XXXXSECRET" not in page
    assert "alpha-pets" in listing
