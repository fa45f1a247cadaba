"""Faults of the Celery side, against real worker processes (RELIABILITY E1, E4).

Each test starts its own redis-server (the workers' broker, cache and streams) and its own
workers (`-Q default,notifications,analytics,shopify`), and stops only those — never the
shared 5432/6379 servers. The database is the test database."""

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import redis
from celery import current_app
from django.db import connection
from django.test import Client

from apps.core.models import PointsTransaction
from apps.shopify.models import WebhookDelivery, WebhookStatus
from tests.celery_queues import worker_command
from tests.conftest import wait_for
from tests.factories import CustomerFactory, MerchantFactory
from tests.faults.harness import RedisServer, require_binaries
from tests.shopify.test_webhooks_faults import _database_url
from tests.shopify.webhook_support import order_payload, post_webhook

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.celery_worker]

ROOT = Path(__file__).resolve().parents[2]
SHOP = "alpha-pets.myshopify.com"
DRAIN = "apps.shopify.webhooks.tasks.webhook_inbox_drain_task"
VISIBILITY_TIMEOUT = 2  # seconds: the broker redelivers a vanished worker's message this soon


@pytest.fixture
def binaries():
    require_binaries()


@contextlib.contextmanager
def publishing_to(broker_url: str):
    """This process publishes to `broker_url` (kombu keeps one producer pool per broker URL
    process-wide, so the pools are rebuilt both ways)."""
    from apps.core.queueing import broker_health

    def use(url):
        current_app.conf.broker_url = url
        current_app._pool = None
        current_app.amqp._producer_pool = None
        broker_health.checked_at = -1e9

    original = current_app.conf.broker_url
    use(broker_url)
    try:
        yield
    finally:
        use(original)


class Worker:
    """One real worker process on every workload queue, on the given broker (and Redis)."""

    def __init__(self, name: str, redis_url: str, *, pool: str = "solo", **env):
        self.pool = pool
        self.log_path = ROOT / "var" / f"test-faults-worker-{name}.log"
        self.name = name
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test",
            "TEST_DATABASE_URL": _database_url(),
            "TEST_REDIS_URL": redis_url,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            **env,
        }
        self.process = None

    def __enter__(self):
        self.log_path.parent.mkdir(exist_ok=True)
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            worker_command(hostname=f"{self.name}@%h", pool=self.pool),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while "ready" not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"worker {self.name} did not start: {self.text()[-2000:]}")
            time.sleep(0.1)
        return self

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def task_ids(self, task: str) -> list[str]:
        return re.findall(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received", self.text())

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def _waiting_on_a_lock(conn) -> int:
    # Inside a transaction PostgreSQL answers pg_stat_activity from the snapshot it took first.
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_order_processing_leaves_one_ledger_entry_per_order_after_redelivery(binaries):
    merchant = MerchantFactory(shop_domain=SHOP)
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="7001", points_balance=0)
    orders = list(range(9300, 9306))
    with RedisServer() as redis_server, publishing_to(redis_server.url):
        # Stored with no worker running: the burst queues exactly one drain of the shop's inbox.
        for order_id in orders:
            payload = order_payload(order_id, customer_id=7001, total="10.00")
            response = post_webhook(
                Client(), shop=SHOP, topic="orders/paid", payload=payload, webhook_id=f"e1-{order_id}"
            )
            assert response.status_code == 200
        broker = redis.Redis.from_url(redis_server.url)
        assert broker.llen("shopify") == 1

        # The test holds the customer's row: the worker's order batch blocks mid-transaction.
        holder = psycopg.connect(_database_url())
        holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", [customer.pk])
        with Worker("e1-first", redis_server.url) as first:
            wait_for(lambda: _waiting_on_a_lock(holder) >= 1, timeout=20)
            assert broker.hlen("unacked") == 1  # taken, not acknowledged (acks_late)
            first.kill()
        holder.rollback()
        holder.close()
        assert len(first.task_ids(DRAIN)) == 1
        assert not PointsTransaction.objects.filter(merchant=merchant).exists()  # rolled back with the worker
        assert broker.hlen("unacked") == 1  # the message survived the worker

        time.sleep(VISIBILITY_TIMEOUT + 0.5)  # a new worker restores messages older than this on start
        with Worker("e1-second", redis_server.url) as second:
            wait_for(
                lambda: not WebhookDelivery.objects.filter(merchant=merchant, status=WebhookStatus.RECEIVED).exists(),
                timeout=20,
            )
        assert second.task_ids(DRAIN)[0] == first.task_ids(DRAIN)[0]  # the same message, delivered again

    assert set(WebhookDelivery.objects.filter(merchant=merchant).values_list("status", flat=True)) == {
        WebhookStatus.PROCESSED
    }
    ledger = Counter(PointsTransaction.objects.filter(merchant=merchant).values_list("idempotency_key", flat=True))
    assert ledger == Counter({f"order:{order_id}:earn": 1 for order_id in orders})
    customer.refresh_from_db()
    assert customer.points_balance == 10 * len(orders)
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_provider_outage_holds_notifications_behind_the_breaker_and_sends_each_once_after(binaries, fake_providers):
    from django.db import transaction

    from apps.notifications.models import Notification, State
    from apps.notifications.services import notify
    from tests.notifications.support import connect_providers, subscribed_customer

    reset_seconds = 3
    merchant = MerchantFactory(shop_domain=SHOP)
    connect_providers(merchant)
    klaviyo = fake_providers.klaviyo
    klaviyo.answer(500, 500)  # the outage: two failures open the breaker; then the fake answers 200
    env = {"NOTIFICATIONS_BREAKER_FAIL_MAX": "2", "NOTIFICATIONS_BREAKER_RESET_SECONDS": str(reset_seconds)}
    with RedisServer() as redis_server, publishing_to(redis_server.url), Worker("e4", redis_server.url, **env):
        rows = []
        for index in range(5):
            with transaction.atomic():
                rows += notify(
                    merchant=merchant,
                    type="badge_earned",
                    customer=subscribed_customer(merchant, email=f"e4-{index}@example.com"),
                    context={"badge": {"en": "Seasonal Star"}},
                    idempotency_key=f"e4-badge-{index}",
                    channels=("email",),
                )
        ids = [row.pk for row in rows]
        wait_for(lambda: Notification.objects.filter(pk__in=ids, state=State.SENT).count() == len(ids), timeout=25)

    assert len(klaviyo.requests) == len(ids) + 2  # the two failures, then one call per notification
    # Nothing reached it while open (the breaker's opened_at is kept in whole seconds).
    assert klaviyo.times[2] - klaviyo.times[1] >= reset_seconds - 1
    assert sorted(klaviyo.events) == sorted(ids)  # each sent once
    attempts = sorted(Notification.objects.filter(pk__in=ids).values_list("attempts", flat=True))
    assert sum(attempts) == len(ids) + 2  # waiting behind the open breaker used no attempt
