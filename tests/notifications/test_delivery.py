"""The outbox and the senders in this process: rows, consent, preferences, providers, retries
(E2), breakers (E4). The same code runs in the Celery worker (see test_worker.py)."""

import time

import pytest
from django.db import transaction

from apps.notifications.models import Notification, NotificationPreference, State
from apps.notifications.services import UnknownNotificationType, notify
from tests.factories import CustomerFactory, StaffMemberFactory
from tests.notifications.support import connect_providers, deliver_due, reload, subscribed_customer

pytestmark = pytest.mark.django_db


def badge(merchant, customer, key="badge-1", **kwargs):
    return notify(
        merchant=merchant,
        type="badge_earned",
        customer=customer,
        context={"badge": {"en": "Seasonal Star", "de": "Saisonstern"}},
        idempotency_key=key,
        **kwargs,
    )


# --- the outbox -------------------------------------------------------------------------------


def test_notify_writes_one_pending_row_per_channel_in_the_callers_transaction(merchant):
    customer = subscribed_customer(merchant)

    with pytest.raises(RuntimeError), transaction.atomic():
        badge(merchant, customer)
        raise RuntimeError("the change fails")
    assert not Notification.objects.exists()

    rows = badge(merchant, customer)

    assert sorted(row.channel for row in rows) == ["email", "sms"]
    assert {row.state for row in rows} == {State.PENDING}
    assert all(row.pk.startswith("ntf_") and row.attempts == 0 for row in rows)


def test_the_same_idempotency_key_twice_adds_nothing(merchant, other_merchant):
    customer = subscribed_customer(merchant)
    first = badge(merchant, customer, key="order-42")

    again = badge(merchant, customer, key="order-42")
    elsewhere = badge(other_merchant["merchant"], other_merchant["customers"][0], key="order-42")

    assert sorted(r.pk for r in again) == sorted(r.pk for r in first)
    assert Notification.objects.filter(merchant=merchant).count() == 2
    assert len(elsewhere) == 2  # keys are unique per merchant, not globally


def test_notify_refuses_unknown_types_and_missing_context(merchant, customer):
    with pytest.raises(UnknownNotificationType):
        notify(merchant=merchant, type="no_such_thing", customer=customer, idempotency_key="k")
    with pytest.raises(ValueError, match="badge"):
        notify(merchant=merchant, type="badge_earned", customer=customer, idempotency_key="k")
    assert not Notification.objects.exists()


# --- providers --------------------------------------------------------------------------------


def test_email_goes_to_the_merchants_klaviyo_as_an_event_with_the_notification_as_unique_id(merchant, fake_providers):
    connect_providers(merchant)
    customer = subscribed_customer(merchant, email="ada@example.com", locale="en")
    email = next(r for r in badge(merchant, customer, channels=("email",)))

    outcome = deliver_due()

    assert outcome == {email.pk: State.SENT}
    [request] = fake_providers.klaviyo.requests
    assert request.headers["Authorization"] == f"Klaviyo-API-Key pk_{merchant.pk[-6:]}"
    assert request.headers["revision"]
    attributes = request.json()["data"]["attributes"]
    assert attributes["unique_id"] == email.pk
    assert attributes["metric"]["data"]["attributes"]["name"] == "LoyalNest badge_earned"
    assert attributes["profile"]["data"]["attributes"]["email"] == "ada@example.com"
    assert attributes["properties"]["subject"] == "You earned the Seasonal Star badge"
    assert "<bdi>Alpha Pets</bdi>" in attributes["properties"]["body_html"]
    row = reload(email)
    assert (row.state, row.attempts, row.provider_message_id, row.last_error) == (State.SENT, 1, email.pk, "")
    assert row.sent_at is not None


def test_sms_goes_through_postscript_with_the_merchants_key(merchant, fake_providers):
    connect_providers(merchant)
    customer = subscribed_customer(merchant, phone="+15555550123")
    sms = badge(merchant, customer, channels=("sms",))[0]

    deliver_due()

    [request] = fake_providers.postscript.requests
    assert request.path == "/api/v2/message_requests"
    assert request.headers["Authorization"] == f"Bearer ps_{merchant.pk[-6:]}"
    assert request.json()["phone"] == "+15555550123"
    assert "Seasonal Star" in request.json()["body"]
    assert reload(sms).provider_message_id == "msgreq_1"


def test_slack_messages_go_to_the_merchants_webhook_and_staff_mail_through_loyalnest_klaviyo(
    merchant, owner, fake_providers
):
    connect_providers(merchant)
    notify(merchant=merchant, type="beta_feature_released", context={"feature": "RFM v2"}, idempotency_key="b1")
    notify(
        merchant=merchant,
        type="merchant_referral_status",
        staff=owner,
        context={"referred_shop": "gamma.myshopify.com", "status": "converted", "reward": "1 month free"},
        idempotency_key="r1",
    )

    outcome = deliver_due()

    assert set(outcome.values()) == {State.SENT}
    [hook] = fake_providers.slack.requests
    assert hook.path == "/services/T000/B000/XXXXSECRET"
    assert "RFM v2" in hook.json()["text"]
    [event] = fake_providers.klaviyo.requests
    assert event.headers["Authorization"] == "Klaviyo-API-Key pk_loyalnest_test"
    assert event.json()["data"]["attributes"]["profile"]["data"]["attributes"]["email"] == owner.email


def test_slack_web_api_posts_to_the_merchants_channel_when_there_is_no_webhook(merchant, fake_providers, settings):
    settings.NOTIFICATIONS_SLACK_BOT_TOKEN = "xoxb-test"
    connect_providers(merchant, slack_webhook_url="", slack_channel_id="C0123")
    [row] = notify(merchant=merchant, type="slack_joined", idempotency_key="welcome")

    deliver_due()

    [request] = fake_providers.slack.requests
    assert request.path.endswith("/api/chat.postMessage")
    assert request.headers["Authorization"] == "Bearer xoxb-test"
    assert reload(row).provider_message_id.startswith("1700000000.")


def test_a_provider_the_merchant_has_not_connected_fails_with_the_reason(merchant, fake_providers):
    customer = subscribed_customer(merchant)
    [email] = badge(merchant, customer, channels=("email",))

    deliver_due()

    row = reload(email)
    assert (row.state, row.last_error) == (State.FAILED, "klaviyo is not connected")
    assert fake_providers.klaviyo.requests == []


# --- consent and preferences -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "email_reason", "sms_reason"),
    [
        ({"email_marketing_consent": "unsubscribed"}, "no email marketing consent", ""),
        ({"sms_marketing_consent": "pending"}, "", "no SMS marketing consent"),
        ({"email": "", "phone": ""}, "no email address", "no phone number"),
        (
            {"email_marketing_consent": "", "sms_marketing_consent": ""},
            "no email marketing consent",
            "no SMS marketing consent",
        ),
    ],
)
def test_shoppers_without_consent_or_address_are_skipped_with_the_reason(
    merchant, fake_providers, fields, email_reason, sms_reason
):
    connect_providers(merchant)
    customer = subscribed_customer(merchant, **fields)
    rows = {row.channel: row for row in badge(merchant, customer)}

    deliver_due()

    for channel, reason in (("email", email_reason), ("sms", sms_reason)):
        row = reload(rows[channel])
        assert (row.state, row.last_error) == ((State.SKIPPED, reason) if reason else (State.SENT, ""))
    assert len(fake_providers.klaviyo.requests) == (0 if email_reason else 1)
    assert len(fake_providers.postscript.requests) == (0 if sms_reason else 1)


def test_a_type_switched_off_for_a_channel_is_skipped_and_the_other_channel_still_sent(merchant, fake_providers):
    connect_providers(merchant)
    NotificationPreference.objects.create(merchant=merchant, type="badge_earned", channel="sms", enabled=False)
    NotificationPreference.objects.create(merchant=merchant, type="badge_earned", channel="email", enabled=True)
    rows = {row.channel: row for row in badge(merchant, subscribed_customer(merchant))}

    deliver_due()

    assert reload(rows["sms"]).state == State.SKIPPED
    assert reload(rows["sms"]).last_error == "switched off by the merchant"
    assert reload(rows["email"]).state == State.SENT
    assert fake_providers.postscript.requests == []


# --- retries (E2) -----------------------------------------------------------------------------


def test_a_400_fails_at_once_without_retry(merchant, fake_providers):
    connect_providers(merchant)
    fake_providers.klaviyo.answer(400)
    [email] = badge(merchant, subscribed_customer(merchant), channels=("email",))

    deliver_due()
    time.sleep(0.3)
    deliver_due()

    row = reload(email)
    assert (row.state, row.attempts, row.last_error) == (State.FAILED, 1, "klaviyo answered HTTP 400")
    assert len(fake_providers.klaviyo.requests) == 1


def test_a_429_waits_for_retry_after_then_sends_once(merchant, fake_providers):
    connect_providers(merchant)
    fake_providers.postscript.answer((429, {"errors": []}, {"Retry-After": "1"}))
    [sms] = badge(merchant, subscribed_customer(merchant), channels=("sms",))

    assert deliver_due() == {sms.pk: State.PENDING}
    waiting = reload(sms)
    assert (waiting.state, waiting.attempts, waiting.last_error) == (State.PENDING, 1, "postscript answered HTTP 429")
    assert deliver_due() == {}  # not due before Retry-After
    time.sleep(1.1)
    assert deliver_due() == {sms.pk: State.SENT}

    assert len(fake_providers.postscript.requests) == 2
    assert reload(sms).attempts == 2


def test_500_four_times_fails_after_three_retries(merchant, fake_providers, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS = 0.05
    connect_providers(merchant)
    fake_providers.slack.answer(500, 500, 500, 500, 500)
    [row] = notify(merchant=merchant, type="beta_feature_released", context={"feature": "x"}, idempotency_key="b")

    states = []
    deadline = time.monotonic() + 10
    while reload(row).state not in (State.FAILED, State.SENT) and time.monotonic() < deadline:
        states += deliver_due().values()
        time.sleep(0.05)

    final = reload(row)
    assert (final.state, final.attempts, final.last_error) == (State.FAILED, 4, "slack answered HTTP 500")
    assert states == [State.PENDING, State.PENDING, State.PENDING, State.FAILED]
    assert len(fake_providers.slack.requests) == 4


# --- circuit breaker (E4) ---------------------------------------------------------------------


def test_an_outage_opens_the_breaker_then_notifications_wait_without_calls_until_it_half_opens(
    merchant, fake_providers, settings
):
    settings.NOTIFICATIONS_BREAKER_FAIL_MAX = 2
    settings.NOTIFICATIONS_BREAKER_RESET_SECONDS = 2  # pybreaker keeps opened_at in whole seconds
    settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS = 0.01
    connect_providers(merchant)
    fake_providers.klaviyo.answer(503, 503)
    customers = [subscribed_customer(merchant) for _ in range(5)]
    rows = [badge(merchant, c, key=f"b{i}", channels=("email",))[0] for i, c in enumerate(customers)]

    deliver_due()

    assert len(fake_providers.klaviyo.requests) == 2  # the breaker opened after two failures
    waiting = [reload(row) for row in rows]
    assert {row.state for row in waiting} == {State.PENDING}
    untouched = [row for row in waiting if row.attempts == 0]
    assert len(untouched) == 3  # no attempt used while the circuit was open
    assert all(row.last_error == "circuit open for klaviyo: waiting" for row in untouched)
    time.sleep(0.2)
    deliver_due()
    assert len(fake_providers.klaviyo.requests) == 2  # still open: nothing reached Klaviyo

    time.sleep(2.1)  # reset timeout: half-open, one trial call, success closes the circuit
    deliver_due()

    assert {reload(row).state for row in rows} == {State.SENT}
    assert len(fake_providers.klaviyo.requests) == 7
    assert len(fake_providers.klaviyo.events) == 5


def test_a_400_does_not_count_towards_the_breaker(merchant, fake_providers, settings):
    settings.NOTIFICATIONS_BREAKER_FAIL_MAX = 2
    connect_providers(merchant)
    fake_providers.klaviyo.answer(400, 400, 400)
    rows = [badge(merchant, subscribed_customer(merchant), key=f"k{i}", channels=("email",))[0] for i in range(4)]

    deliver_due()

    assert [reload(row).state for row in rows].count(State.FAILED) == 3
    assert [reload(row).state for row in rows].count(State.SENT) == 1


def test_staff_without_email_and_redacted_customers_are_skipped(merchant, fake_providers):
    connect_providers(merchant)
    staff = StaffMemberFactory(merchant=merchant, email="")
    customer = CustomerFactory(merchant=merchant, email_marketing_consent="subscribed", redacted_at="2026-01-01T00:00Z")
    rows = [
        *notify(
            merchant=merchant,
            type="merchant_referral_status",
            staff=staff,
            context={"referred_shop": "x", "status": "y", "reward": "z"},
            idempotency_key="s",
        ),
        *badge(merchant, customer, channels=("email",)),
    ]

    deliver_due()

    assert [(reload(r).state, reload(r).last_error) for r in rows] == [
        (State.SKIPPED, "no email address"),
        (State.SKIPPED, "no recipient"),
    ]
