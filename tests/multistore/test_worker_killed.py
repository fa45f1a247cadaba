"""A real Celery worker SIGKILLed while a group sync runs: after reconciliation every copy in
every store equals the ledger (acks_late pages may be lost with the worker; the sweep repairs)."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.core.models import Customer
from apps.multistore.models import StoreGroupMember
from apps.multistore.selectors import sync_accuracy
from apps.multistore.services import group_reconcile, shared_customers_link
from apps.multistore.tasks import group_sync_task
from apps.shopify.metafields import customer_gid
from tests.factories import CustomerFactory
from tests.fakes.shopify_ops_metafields import metafield_get
from tests.shopify_helpers import shopify_connect

ROOT = Path(__file__).resolve().parents[2]
QUEUES = "default,notifications,analytics,shopify"
WORKER_FLAGS = ("-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat")


def _start_worker(shopify_relay, log_path):
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test",
        "TEST_DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "TEST_REDIS_URL": settings.REDIS_URL,
        "SHOPIFY_API_BASE_URL": shopify_relay.url,
    }
    log = open(log_path, "w")  # noqa: SIM115  (closed by the caller)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "loyalnest", "worker", "-P", "solo", "-Q", QUEUES, *WORKER_FLAGS],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while "ready" not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(log_path.read_text())
        time.sleep(0.2)
    return process, log


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sync_leaves_nothing_reconciliation_cannot_repair(
    group, stores, fake_shopify, shopify_relay
):
    for store, _owner in stores:
        shopify_connect(fake_shopify, store)
    for n in range(40):
        for store, _owner in stores:
            CustomerFactory(
                merchant=store, email=f"c{n}@example.com", first_name="Ana", last_name=f"N{n}", points_balance=n
            )
    assert shared_customers_link(group=group).linked == 120

    # The fake answers two metafieldsSet calls, then holds the third until the worker is dead.
    real_respond, calls = fake_shopify._respond, []
    mid_sync, released = threading.Event(), threading.Event()

    def respond(request):
        if request.method == "POST" and "CustomerMetafieldsSet" in str((request.json() or {}).get("query", "")):
            calls.append(1)
            if len(calls) >= 3:
                mid_sync.set()
                released.wait(30)
        return real_respond(request)

    fake_shopify._respond = respond
    (ROOT / "var").mkdir(exist_ok=True)
    process, log = _start_worker(shopify_relay, ROOT / "var" / "test-multistore-kill-worker.log")
    try:
        group_sync_task.delay(group_id=group.pk)
        assert mid_sync.wait(30), "the sync never reached Shopify"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        released.set()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()
        fake_shopify._respond = real_respond

    linked = list(Customer.objects.filter(shared_customer_id__isnull=False).select_related("merchant"))

    def copy(customer, key):
        stored = metafield_get(
            fake_shopify, customer.merchant.shop_domain, customer_gid(customer.shopify_customer_id), key
        )
        return stored["value"] if stored else None

    stale = [c for c in linked if copy(c, "points_balance") != str(c.points_balance)]
    assert stale, "the worker finished before it was killed: nothing was tested"

    for _round in range(3):  # the sweep is idempotent; one round is expected to be enough
        group_reconcile(group_id=group.pk)
        if all(copy(c, "points_balance") == str(c.points_balance) for c in linked):
            break
    for customer in linked:
        fresh = Customer.objects.get(pk=customer.pk)
        assert copy(fresh, "points_balance") == str(fresh.points_balance)
        assert copy(fresh, "shared_customer_id") == fresh.shared_customer_id
    for member in StoreGroupMember.across_stores.filter(group=group):
        assert sync_accuracy(merchant_id=member.merchant_id)["accuracy"] == 1.0
