"""Poison work through real processes (RELIABILITY E1): a webhook delivery whose processing
always fails ends `failed` without holding up the shop's other deliveries, and a Celery message
whose every delivery loses its worker ends in `celery:dead-letter` instead of being run forever.

Each test starts its own redis-server (broker, cache and delivery counts) and its own workers;
the database is the test database."""

import json
import re
import time
from collections import Counter

import psycopg
import pytest
import redis
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.core.models import PointsTransaction
from apps.shopify.models import WebhookDelivery, WebhookStatus
from loyalnest.tasks import DEAD_LETTER_KEY
from tests.conftest import wait_for
from tests.factories import CustomerFactory, MerchantFactory
from tests.faults.harness import RedisServer, require_binaries
from tests.faults.test_worker_faults import (
    DRAIN,
    SHOP,
    VISIBILITY_TIMEOUT,
    Worker,
    _waiting_on_a_lock,
    publishing_to,
)
from tests.shopify.test_webhooks_faults import _database_url
from tests.shopify.webhook_support import order_payload, post_webhook, refund_payload

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.celery_worker]


@pytest.fixture
def binaries():
    require_binaries()


def _send(topic: str, payload: dict, webhook_id: str) -> None:
    response = post_webhook(Client(), shop=SHOP, topic=topic, payload=payload, webhook_id=webhook_id)
    assert response.status_code == 200, response.content[:300]


def _sharing_redis(settings, redis_server) -> None:
    """The web side (this process) and the worker use one Redis, as in production: the drain flag
    the view sets is the one the worker's drain clears."""
    settings.REDIS_URL = redis_server.url


def _delivery(webhook_id: str) -> WebhookDelivery:
    return WebhookDelivery.objects.get(webhook_id=webhook_id)


@pytest.mark.django_db(transaction=True)
def test_a_poison_webhook_ends_failed_after_its_retries_while_the_shops_other_deliveries_are_credited_once(
    binaries, settings
):
    merchant = MerchantFactory(shop_domain=SHOP)
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="7001", points_balance=0)
    before, after = [9500, 9501, 9502], [9503, 9504, 9505]
    rejected = order_payload(9599, customer_id=7001, total="10.00")
    del rejected["updated_at"]  # valid HMAC, valid JSON; the orders code refuses it
    max_attempts = 3
    env = {"SHOPIFY_WEBHOOK_MAX_ATTEMPTS": str(max_attempts)}
    with RedisServer() as redis_server, publishing_to(redis_server.url), Worker("e1-poison", redis_server.url, **env):
        _sharing_redis(settings, redis_server)
        for order_id in before:
            _send("orders/paid", order_payload(order_id, customer_id=7001, total="10.00"), f"good-{order_id}")
        # A refund of an order Shopify never sends us: retried (the order may still come), then failed.
        _send("refunds/create", refund_payload(8801, 999001, "5.00"), "poison-refund")
        _send("orders/create", rejected, "poison-order")
        wait_for(lambda: _delivery("poison-refund").attempts >= 1, timeout=20)
        for order_id in after:  # sent while the poison waits for its retries
            _send("orders/paid", order_payload(order_id, customer_id=7001, total="10.00"), f"good-{order_id}")
        wait_for(lambda: _delivery("poison-refund").status == WebhookStatus.FAILED, timeout=30)
        wait_for(
            lambda: not WebhookDelivery.objects.filter(merchant=merchant, status=WebhookStatus.RECEIVED).exists(),
            timeout=10,
        )

    statuses = dict(WebhookDelivery.objects.filter(merchant=merchant).values_list("webhook_id", "status"))
    assert statuses == {
        **{f"good-{order_id}": WebhookStatus.PROCESSED for order_id in before + after},
        "poison-refund": WebhookStatus.FAILED,
        "poison-order": WebhookStatus.FAILED,
    }
    refund, order = _delivery("poison-refund"), _delivery("poison-order")
    assert (refund.attempts, refund.retry_at) == (max_attempts, None)
    assert refund.last_error.startswith("OrderNotYetKnown")
    assert (order.attempts, order.last_error) == (1, "invalid payload: updated_at is missing")  # never retried
    # The deliveries sent after the poison did not wait for it to run out of attempts.
    assert max(_delivery(f"good-{order_id}").processed_at for order_id in after) < refund.processed_at
    ledger = Counter(PointsTransaction.objects.filter(merchant=merchant).values_list("idempotency_key", flat=True))
    assert ledger == Counter({f"order:{order_id}:earn": 1 for order_id in before + after})
    customer.refresh_from_db()
    assert customer.points_balance == 10 * len(before + after)

    # Staff find both in admin's failed deliveries, with the reason.
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("ops-e1", "ops-e1@loyalnest.test", "pw-ops-e1"))
    page = staff.get(reverse("admin:shopify_webhookdelivery_changelist"), {"status__exact": "failed"})
    assert page.status_code == 200
    html = page.content.decode()
    assert str(refund.pk) in html and str(order.pk) in html and "OrderNotYetKnown" in html
    assert not any(str(_delivery(f"good-{order_id}").pk) in html for order_id in before + after)
    connection.close()


def _end_lock_waits(holder) -> int:
    """Terminate the server backends of a killed worker still queued on the held lock (PostgreSQL
    only notices a vanished client when it next writes to it) so they release their row locks."""
    holder.execute("SELECT pg_stat_clear_snapshot()")
    return len(
        holder.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchall()
    )


@pytest.mark.django_db(transaction=True)
def test_a_message_that_loses_its_worker_on_every_delivery_is_dead_lettered_and_later_work_goes_on(binaries, settings):
    merchant = MerchantFactory(shop_domain=SHOP)
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="7001", points_balance=0)
    max_deliveries = 2
    env = {"CELERY_MAX_DELIVERIES": str(max_deliveries)}
    with RedisServer() as redis_server, publishing_to(redis_server.url):
        _sharing_redis(settings, redis_server)
        broker = redis.Redis.from_url(redis_server.url)
        _send("orders/paid", order_payload(9600, customer_id=7001, total="10.00"), "stuck-9600")
        assert broker.llen("shopify") == 1  # one drain message, no worker yet

        # Every delivery of it blocks on the customer's row and its worker is SIGKILLed there.
        holder = psycopg.connect(_database_url(), autocommit=True)
        try:
            holder.execute("BEGIN")
            holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", [customer.pk])
            killed = []
            for delivery in range(1, max_deliveries + 1):
                with Worker(f"e1-dies-{delivery}", redis_server.url, **env) as worker:
                    wait_for(lambda: _waiting_on_a_lock(holder) >= 1, timeout=20)
                    worker.kill()
                killed += worker.task_ids(DRAIN)
                assert _end_lock_waits(holder) == 1
                time.sleep(VISIBILITY_TIMEOUT + 0.5)  # the next worker restores it when it starts
            assert len(killed) == max_deliveries and len(set(killed)) == 1  # the same message each time
            poison_id = killed[0]

            with Worker("e1-after", redis_server.url, **env) as worker:
                wait_for(lambda: broker.llen(DEAD_LETTER_KEY) == 1, timeout=20)
                letter = json.loads(broker.lindex(DEAD_LETTER_KEY, 0))
                assert letter == {
                    "task": DRAIN,
                    "id": poison_id,
                    "retries": 0,
                    "deliveries": max_deliveries + 1,
                    "kwargs": {"merchant_id": str(merchant.pk)},
                }
                wait_for(lambda: f"[{poison_id}] succeeded" in worker.text(), timeout=10)
                assert re.search(rf"\[{poison_id}\] succeeded in [0-9.]+s: None", worker.text())  # returned unrun
                assert _waiting_on_a_lock(holder) == 0  # not run: nothing queued on the lock
                assert (broker.llen("shopify"), broker.hlen("unacked")) == (0, 0)  # acknowledged, gone
                assert _delivery("stuck-9600").status == WebhookStatus.RECEIVED
                holder.close()  # the lock is released

                # The same worker takes the next message; the delivery the poison held is drained too.
                _send("orders/paid", order_payload(9601, customer_id=7001, total="10.00"), "later-9601")
                wait_for(
                    lambda: (
                        not WebhookDelivery.objects.filter(merchant=merchant, status=WebhookStatus.RECEIVED).exists()
                    ),
                    timeout=20,
                )
                drains = worker.task_ids(DRAIN)
        finally:
            holder.close()
        assert drains[0] == poison_id and len(drains) == 2
        assert f"[{poison_id}] succeeded" in worker.text() and f"[{drains[1]}] succeeded" in worker.text()
        assert worker.text().count(f"[{poison_id}] received") == 1
        assert broker.llen(DEAD_LETTER_KEY) == 1

    ledger = Counter(PointsTransaction.objects.filter(merchant=merchant).values_list("idempotency_key", flat=True))
    assert ledger == Counter({"order:9600:earn": 1, "order:9601:earn": 1})
    customer.refresh_from_db()
    assert customer.points_balance == 20
    connection.close()
