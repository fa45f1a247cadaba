"""The outbox end to end through a real Celery worker process: kicks after commit, retries
that wait (Retry-After, backoff), crashes between commit and send, and a broker outage."""

import time

import pytest
from django.db import transaction

from apps.notifications.delivery import notifications_claim, outbound_message
from apps.notifications.models import Notification, State
from apps.notifications.providers import SENDERS
from apps.notifications.queueing import relay_kick
from apps.notifications.services import notify
from tests.conftest import wait_for
from tests.notifications.support import connect_providers, reload, subscribed_customer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker_process")]


@pytest.fixture
def shop(merchant):
    connect_providers(merchant)
    return merchant


def badge_email(merchant, customer, key="badge-1"):
    with transaction.atomic():
        [row] = notify(
            merchant=merchant,
            type="badge_earned",
            customer=customer,
            context={"badge": {"en": "Seasonal Star"}},
            idempotency_key=key,
            channels=("email",),
        )
    return row


def test_a_committed_notification_is_sent_by_the_worker(shop, fake_providers):
    row = badge_email(shop, subscribed_customer(shop))

    wait_for(lambda: reload(row).state == State.SENT)

    assert list(fake_providers.klaviyo.events) == [row.pk]


def test_429_with_retry_after_is_sent_once_after_the_wait(shop, fake_providers):
    fake_providers.klaviyo.answer((429, {"errors": []}, {"Retry-After": "2"}))

    row = badge_email(shop, subscribed_customer(shop))

    wait_for(lambda: reload(row).state == State.SENT)
    first, second = fake_providers.klaviyo.times
    assert second - first >= 1.9
    assert len(fake_providers.klaviyo.events) == 1
    assert reload(row).attempts == 2


def test_400_fails_without_retry(shop, fake_providers):
    fake_providers.klaviyo.answer(400)

    row = badge_email(shop, subscribed_customer(shop))

    wait_for(lambda: reload(row).state == State.FAILED)
    time.sleep(1)
    assert len(fake_providers.klaviyo.requests) == 1
    assert reload(row).attempts == 1


def test_500_four_times_fails_after_three_retries(shop, fake_providers):
    fake_providers.klaviyo.answer(500, 500, 500, 500, 500)

    row = badge_email(shop, subscribed_customer(shop))

    wait_for(lambda: reload(row).state == State.FAILED, timeout=30)
    final = reload(row)
    assert (final.attempts, final.last_error) == (4, "klaviyo answered HTTP 500")
    time.sleep(1)
    assert len(fake_providers.klaviyo.requests) == 4
    assert fake_providers.klaviyo.events == {}


def test_a_crash_between_commit_and_send_still_sends_exactly_once_after_recovery(
    shop, fake_providers, settings, broker_down
):
    # The change commits, the kick is lost, a relay claims the row and dies before handing it on.
    settings.NOTIFICATIONS_LEASE_SECONDS = 1.5
    row = badge_email(shop, subscribed_customer(shop))
    broker_down.restore()
    assert notifications_claim() == [row.pk]
    assert reload(row).state == State.SENDING

    relay_kick()  # the next relay run: the lease still holds, nothing is sent twice
    time.sleep(1)
    assert fake_providers.klaviyo.requests == []

    time.sleep(0.6)
    relay_kick()  # the lease ran out: the row is claimed again and sent

    wait_for(lambda: reload(row).state == State.SENT)
    time.sleep(0.5)
    assert len(fake_providers.klaviyo.requests) == 1


def test_a_worker_that_died_after_klaviyo_accepted_resends_with_the_same_unique_id(
    shop, fake_providers, settings, broker_down
):
    settings.NOTIFICATIONS_LEASE_SECONDS = 1
    row = badge_email(shop, subscribed_customer(shop))
    broker_down.restore()
    [claimed] = notifications_claim()
    notification = Notification.objects.select_related("merchant", "customer", "staff").get(pk=claimed)
    sender = SENDERS["klaviyo"]
    credential = sender.credential(notification=notification, merchant_settings=shop.notification_settings)
    sender.send(outbound_message(notification), credential)  # ...and the worker dies here

    time.sleep(1.1)
    relay_kick()

    wait_for(lambda: reload(row).state == State.SENT)
    assert len(fake_providers.klaviyo.requests) == 2
    assert {r.json()["data"]["attributes"]["unique_id"] for r in fake_providers.klaviyo.requests} == {row.pk}
    assert list(fake_providers.klaviyo.events) == [row.pk]  # Klaviyo records it once


def test_with_the_broker_down_the_row_waits_and_is_sent_when_it_returns(shop, fake_providers, broker_down):
    started = time.monotonic()
    row = badge_email(shop, subscribed_customer(shop))
    assert time.monotonic() - started < 2  # the commit never blocks on the dead broker

    time.sleep(1)
    assert reload(row).state == State.PENDING
    assert fake_providers.klaviyo.requests == []

    broker_down.restore()  # Redis is back: beat's next relay run
    assert relay_kick()

    wait_for(lambda: reload(row).state == State.SENT)
    assert len(fake_providers.klaviyo.events) == 1
