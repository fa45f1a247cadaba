"""Concurrency, a real Celery worker, and faults (A3, E1, E5, E6) over real processes."""

import json
import os
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.db import connection
from django.test import Client

from apps.core.models import Customer, PointsTransaction
from apps.shopify.models import WebhookDelivery, WebhookStatus
from apps.shopify.webhooks.inbox import webhook_delivery_process
from apps.shopify.webhooks.tasks import webhook_inbox_sweep_task
from tests.conftest import wait_for
from tests.factories import MerchantFactory
from tests.shopify.webhook_support import WEBHOOK_URL, http_headers, order_payload, post_webhook, webhook_headers

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(**overrides) -> str:
    db = {**connection.settings_dict, **overrides}
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Gunicorn:
    """The app under gunicorn on loopback with the given database and Redis URLs."""

    def __init__(self, *, database_url: str, redis_url: str):
        self.port = _free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test",
            "TEST_DATABASE_URL": database_url,
            "TEST_REDIS_URL": redis_url,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "loyalnest.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                "1",
                "--timeout",
                "30",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}{WEBHOOK_URL}", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.process.kill()
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)

    def post(self, *, shop: str, topic: str, payload: bytes, webhook_id: str):
        headers = http_headers(webhook_headers(shop=shop, topic=topic, body=payload, webhook_id=webhook_id))
        return httpx.post(
            f"{self.url}{WEBHOOK_URL}",
            content=payload,
            headers={**headers, "Content-Type": "application/json"},
            timeout=10,
        )


@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_five_times_concurrently_is_stored_once_and_credits_once():
    merchant = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    other = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    payload = order_payload(6001, total="75.00")

    def post(_):
        return post_webhook(
            Client(), shop=merchant.shop_domain, topic="orders/paid", payload=payload, webhook_id="wh-6001"
        ).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        assert set(pool.map(post, range(5))) == {200}
    assert WebhookDelivery.objects.filter(merchant=merchant).count() == 1

    # Shopify also sends the same order under other topics and webhook ids: five distinct
    # deliveries, processed concurrently in a shuffled order, credit once.
    topics = ["orders/create", "orders/updated", "orders/paid", "orders/updated", "orders/paid"]
    for index, topic in enumerate(topics):
        post_webhook(Client(), shop=merchant.shop_domain, topic=topic, payload=payload, webhook_id=f"wh-6001-{index}")
    ids = list(WebhookDelivery.objects.filter(merchant=merchant).values_list("pk", flat=True))
    random.Random(7).shuffle(ids)

    def process(delivery_id):
        try:
            return webhook_delivery_process(merchant=merchant, delivery_id=delivery_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(process, ids))

    assert list(PointsTransaction.objects.filter(merchant=merchant).values_list("idempotency_key", "points")) == [
        ("order:6001:earn", 75)
    ]
    customer = Customer.objects.get(merchant=merchant)
    assert customer.points_balance == 75 and customer.orders_count == 1
    assert set(WebhookDelivery.objects.filter(merchant=merchant).values_list("status", flat=True)) <= {
        WebhookStatus.PROCESSED,
        WebhookStatus.SKIPPED,
    }
    assert not PointsTransaction.objects.filter(merchant=other).exists()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_deliveries_from_the_view(celery_worker_process):
    merchant = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    other = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    payload = order_payload(6002, total="42.00")
    topics = ["orders/paid", "orders/updated", "orders/create", "orders/paid", "orders/updated"]
    random.Random(3).shuffle(topics)

    for index, topic in enumerate(topics):
        assert (
            post_webhook(
                Client(), shop=merchant.shop_domain, topic=topic, payload=payload, webhook_id=f"w{index}"
            ).status_code
            == 200
        )

    wait_for(lambda: not WebhookDelivery.objects.filter(merchant=merchant, status=WebhookStatus.RECEIVED).exists())
    assert list(PointsTransaction.objects.filter(merchant=merchant).values_list("points", flat=True)) == [42]
    assert not PointsTransaction.objects.filter(merchant=other).exists()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_deliveries_are_accepted_and_the_sweep_queues_them(settings, celery_worker_process):
    merchant = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    payload = json.dumps(order_payload(6003)).encode()
    with Gunicorn(database_url=_database_url(), redis_url="redis://127.0.0.1:1/0") as server:
        timings = []
        for index in range(3):
            started = time.monotonic()
            response = server.post(
                shop=merchant.shop_domain, topic="orders/paid", payload=payload, webhook_id=f"nb{index}"
            )
            timings.append(time.monotonic() - started)
            assert response.status_code == 200

    assert max(timings) < 2, timings  # well inside Shopify's 5 s
    statuses = WebhookDelivery.objects.filter(merchant=merchant).values_list("status", flat=True)
    assert list(statuses) == [WebhookStatus.RECEIVED] * 3

    settings.SHOPIFY_WEBHOOK_SWEEP_AFTER_SECONDS = 0
    assert webhook_inbox_sweep_task() == 3
    # Once the broker is back the swept deliveries are processed (and the test leaves no work
    # running behind it while the database is flushed).
    wait_for(lambda: not WebhookDelivery.objects.filter(merchant=merchant, status=WebhookStatus.RECEIVED).exists())
    # The three deliveries carry one order: one is applied, the same-version repeats are skipped.
    assert WebhookDelivery.objects.filter(merchant=merchant, status=WebhookStatus.FAILED).count() == 0
    assert PointsTransaction.objects.filter(merchant=merchant).count() == 1


def test_with_the_database_down_deliveries_get_503_never_200():
    dead_port = _free_port()
    payload = b'{"id": 6004}'
    with Gunicorn(database_url=_database_url(PORT=dead_port), redis_url="redis://127.0.0.1:6379/4") as server:
        response = server.post(
            shop="alpha-pets.myshopify.com", topic="orders/paid", payload=payload, webhook_id="no-db"
        )

    assert response.status_code == 503
