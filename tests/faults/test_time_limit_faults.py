"""Time limits enforced by a real prefork worker, the pool production runs (docs/OPERATIONS.md,
Time limits per queue).

The tiny limits are in the worker's environment only (`CELERY_TIME_LIMITS_SHOPIFY`), as an
operator sets them; this process publishes with the default ones. Each test starts its own
redis-server and its own prefork worker with one child; the database is the test database."""

import contextlib
import json
import re
import time
from collections import Counter
from types import SimpleNamespace

import psycopg
import pytest
import redis
from django.db import connection

from apps.core.models import PointsTransaction
from apps.shopify.models import WebhookDelivery, WebhookStatus
from tests.conftest import wait_for
from tests.factories import CustomerFactory, MerchantFactory
from tests.faults.harness import RedisServer, require_binaries
from tests.faults.test_poison_faults import _end_lock_waits, _send, _sharing_redis
from tests.faults.test_worker_faults import DRAIN, SHOP, Worker, _waiting_on_a_lock, publishing_to
from tests.shopify.test_webhooks_faults import _database_url
from tests.shopify.webhook_support import order_payload

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.celery_worker]


@pytest.fixture
def binaries():
    require_binaries()


def _children(worker: Worker) -> list[str]:
    """The pool processes that ran tasks, in order (`ForkPoolWorker-N` of the log lines)."""
    return list(dict.fromkeys(re.findall(r"/(ForkPoolWorker-\d+)\]", worker.text())))


def _drains_pending(broker) -> int:
    """Drain messages queued or taken and not yet acknowledged (the shop's flow triggers aside)."""
    queued = [json.loads(raw) for raw in broker.lrange("shopify", 0, -1)]
    taken = [json.loads(raw)[0] for raw in broker.hvals("unacked")]  # [message, exchange, routing key]
    return sum(message["headers"]["task"] == DRAIN for message in queued + taken)


def _all_succeeded(worker: Worker) -> bool:
    log = worker.text()
    return all(f"[{task_id}] succeeded" in log for task_id in worker.task_ids(DRAIN))


def _received(merchant) -> bool:
    return WebhookDelivery.objects.filter(merchant=merchant, status=WebhookStatus.RECEIVED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_drain_past_its_soft_limit_stops_between_batches_and_queues_itself_again(binaries, settings):
    merchant = MerchantFactory(shop_domain=SHOP)
    customers = [CustomerFactory(merchant=merchant, shopify_customer_id=str(7001 + n)) for n in range(4)]
    orders = list(range(9800, 9960))
    env = {
        "CELERY_TIME_LIMITS_SHOPIFY": "0.5,20",
        "SHOPIFY_WEBHOOK_BATCH_SIZE": "4",  # many short transactions: the limit lands mid-drain
        "SHOPIFY_WEBHOOK_DRAIN_MAX_BATCHES": "1000",  # only the time limit ends a drain early
    }
    with RedisServer() as redis_server, publishing_to(redis_server.url):
        _sharing_redis(settings, redis_server)
        broker = redis.Redis.from_url(redis_server.url)
        for order_id in orders:  # stored with no worker running: one drain queued
            _send("orders/paid", order_payload(order_id, customer_id=7001 + order_id % 4, total="10.00"), str(order_id))
        assert broker.llen("shopify") == 1
        with Worker("limits-soft", redis_server.url, pool="prefork", **env) as worker:
            # ~8 s on a quiet machine (worker start included); this machine's speed halves at times.
            wait_for(lambda: not _received(merchant), timeout=60)
            wait_for(lambda: _drains_pending(broker) == 0 and _all_succeeded(worker), timeout=20)
        drains = worker.task_ids(DRAIN)

    log = worker.text()
    stopped = re.findall(r"webhook drain of \S+ hit its time limit after (\d+) deliveries; continued", log)
    assert stopped and 0 < int(stopped[0]) < len(orders)  # the first drain stopped part-way
    assert len(drains) >= 2  # and queued the next, which went on from there
    assert _all_succeeded(worker)  # none failed or retried
    assert "Hard time limit" not in log and _children(worker) == ["ForkPoolWorker-1"]
    # Nothing half-written: the batch the limit interrupted was rolled back and done again once.
    deliveries = WebhookDelivery.objects.filter(merchant=merchant)
    assert Counter(deliveries.values_list("status", "attempts")) == Counter({(WebhookStatus.PROCESSED, 1): len(orders)})
    ledger = Counter(PointsTransaction.objects.filter(merchant=merchant).values_list("idempotency_key", flat=True))
    assert ledger == Counter({f"order:{order_id}:earn": 1 for order_id in orders})
    for customer in customers:
        customer.refresh_from_db()
        assert customer.points_balance == 10 * len(orders) // 4
    connection.close()


@contextlib.contextmanager
def _drain_on_a_locked_row(settings, customer, name: str, limits: str):
    """A prefork worker with `limits` whose drain of order 9700 waits on the customer's row, held by
    this test. Yields the worker, its `broker`, the lock `holder` and when the wait began."""
    holder = psycopg.connect(_database_url(), autocommit=True)
    holder.execute("BEGIN")
    holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", [customer.pk])
    try:
        with RedisServer() as redis_server, publishing_to(redis_server.url):
            _sharing_redis(settings, redis_server)
            env = {"CELERY_TIME_LIMITS_SHOPIFY": limits}
            with Worker(name, redis_server.url, pool="prefork", **env) as worker:
                _send("orders/paid", order_payload(9700, customer_id=7001, total="10.00"), "stuck-9700")
                wait_for(lambda: _waiting_on_a_lock(holder) >= 1, timeout=10)
                broker = redis.Redis.from_url(redis_server.url)
                yield SimpleNamespace(worker=worker, broker=broker, holder=holder, waiting_since=time.monotonic())
                # The next message: its drain credits the stuck delivery and its own once each.
                _send("orders/paid", order_payload(9701, customer_id=7001, total="10.00"), "next-9701")
                wait_for(lambda: not _received(customer.merchant), timeout=10)
                wait_for(lambda: len(worker.task_ids(DRAIN)) >= 2, timeout=5)
                wait_for(lambda: f"[{worker.task_ids(DRAIN)[-1]}] succeeded" in worker.text(), timeout=5)
    finally:
        holder.close()
    ledger = Counter(
        PointsTransaction.objects.filter(merchant=customer.merchant).values_list("idempotency_key", flat=True)
    )
    assert ledger == Counter({"order:9700:earn": 1, "order:9701:earn": 1})
    customer.refresh_from_db()
    assert customer.points_balance == 20
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_drain_waiting_on_a_row_lock_is_interrupted_at_its_soft_limit_and_queues_itself_again(binaries, settings):
    customer = CustomerFactory(merchant=MerchantFactory(shop_domain=SHOP), shopify_customer_id="7001")
    soft, hard = 1, 4
    with _drain_on_a_locked_row(settings, customer, "limits-soft-lock", f"{soft},{hard}") as run:
        worker, broker, holder = run.worker, run.broker, run.holder
        wait_for(lambda: "hit its time limit" in worker.text(), timeout=hard + 2)
        interrupted_after = time.monotonic() - run.waiting_since
        stuck = worker.task_ids(DRAIN)[0]
        wait_for(lambda: f"[{stuck}] succeeded" in worker.text(), timeout=2)
        assert interrupted_after < soft + 1  # the libpq wait did not hold off the soft limit
        # The drain queued itself again; the one that follows finds the deliveries' rows still
        # locked by the interrupted statement and leaves them `received`.
        wait_for(lambda: len(worker.task_ids(DRAIN)) == 2, timeout=5)
        wait_for(lambda: (broker.llen("shopify"), broker.hlen("unacked")) == (0, 0), timeout=5)
        # Django dropped the connection, but the server still runs the statement in the lock queue.
        assert _waiting_on_a_lock(holder) == 1
        holder.execute("ROLLBACK")  # the statement runs on, finds its client gone and rolls back
        wait_for(lambda: _waiting_on_a_lock(holder) == 0, timeout=5)
        assert not PointsTransaction.objects.filter(merchant=customer.merchant).exists()
        assert WebhookDelivery.objects.get(webhook_id="stuck-9700").attempts == 0

    log = worker.text()
    assert "Hard time limit" not in log and _children(worker) == ["ForkPoolWorker-1"]  # the same child went on
    assert _all_succeeded(worker)


@pytest.mark.django_db(transaction=True)
def test_a_drain_stuck_on_a_row_lock_past_its_hard_limit_is_killed_and_the_worker_goes_on(binaries, settings):
    customer = CustomerFactory(merchant=MerchantFactory(shop_domain=SHOP), shopify_customer_id="7001")
    hard = 2
    # No soft limit ("0,…"): nothing in the task ends the wait, as for code that swallows the soft one.
    with _drain_on_a_locked_row(settings, customer, "limits-hard", f"0,{hard}") as run:
        worker, broker, holder = run.worker, run.broker, run.holder
        wait_for(lambda: "Hard time limit" in worker.text(), timeout=hard + 5)
        killed_after = time.monotonic() - run.waiting_since
        (stuck,) = worker.task_ids(DRAIN)
        assert f"Hard time limit ({float(hard)}s) exceeded for {DRAIN}[{stuck}]" in worker.text()
        assert killed_after < hard + 1
        # The pool reports the exit when it next looks after its children (up to seconds later).
        wait_for(lambda: "exited with 'signal 9 (SIGKILL)'" in worker.text(), timeout=10)
        wait_for(lambda: (broker.llen("shopify"), broker.hlen("unacked")) == (0, 0), timeout=5)  # acknowledged
        assert _end_lock_waits(holder) == 1  # the killed child's backend, still queued on the lock
        holder.execute("ROLLBACK")
        assert WebhookDelivery.objects.get(webhook_id="stuck-9700").status == WebhookStatus.RECEIVED

    log = worker.text()
    following = worker.task_ids(DRAIN)[1]
    assert re.search(r"Process 'ForkPoolWorker-1' pid:\d+ exited with 'signal 9 \(SIGKILL\)'", log)
    assert re.search(rf"ForkPoolWorker-2\] Task {DRAIN}\[{following}\] succeeded", log)  # its replacement
    assert log.count(f"[{stuck}] received") == 1  # not delivered again
