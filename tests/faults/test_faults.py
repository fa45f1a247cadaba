"""Faults survived on purpose, against real processes (RELIABILITY E5, E6).

Every test starts and stops only processes it owns: gunicorn, its own redis-server and its own
PostgreSQL cluster (initdb) on free ports — never the shared 5432/6379 servers."""

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.db import connection

from apps.shopify.models import WebhookDelivery
from tests.factories import CustomerFactory, MerchantFactory
from tests.faults.harness import PostgresCluster, RedisServer, require_binaries
from tests.shopify.test_webhooks_faults import Gunicorn, _database_url
from tests.shopify.webhook_support import order_payload
from tests.shopify_helpers import proxy_signed_query

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SHOP = "alpha-pets.myshopify.com"


@pytest.fixture
def binaries():
    require_binaries()


def _points(server, customer_id: str):
    query = proxy_signed_query(SHOP, customer_id)
    return httpx.get(f"{server.url}/proxy/v1/api/points?{query}", timeout=10)


def _admin_session(server, username: str) -> tuple[str, str]:
    """Log into Django admin with a fresh client; return (session id, page of /admin/)."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/admin/login/?next=/admin/",
            data={"username": username, "password": "pw-" + username, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{server.url}/admin/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        home = client.get("/admin/")
        return client.cookies["sessionid"], home.text


@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_or_hung_storefront_webhooks_and_admin_still_work(binaries):
    from django.contrib.auth import get_user_model

    merchant = MerchantFactory(shop_domain=SHOP)
    CustomerFactory(merchant=merchant, shopify_customer_id="6001", points_balance=0)
    from apps.core.models import Customer
    from apps.core.services.ledger import points_earn

    customer = Customer.objects.get(shopify_customer_id="6001")
    points_earn(merchant=merchant, customer=customer, points=250, idempotency_key="seed:e5")
    users = get_user_model()
    for name in ("ops-ann", "ops-ben"):
        users.objects.create_superuser(name, f"{name}@loyalnest.test", "pw-" + name)

    with RedisServer() as redis_server, Gunicorn(database_url=_database_url(), redis_url=redis_server.url) as server:
        assert _points(server, "6001").json()["points_balance"] == 250
        sessions = {}
        for phase, fault in (("stopped", redis_server.stop), ("hung", None)):
            if phase == "hung":
                redis_server.start()
                redis_server.pause()  # SIGSTOP: connections open, nothing answers
            else:
                fault()
            started = time.monotonic()
            response = _points(server, "6001")
            assert response.status_code == 200, (phase, response.text[:300])
            assert response.json()["points_balance"] == 250
            payload = json.dumps(order_payload(8000 + len(sessions))).encode()
            accepted = server.post(shop=SHOP, topic="orders/paid", payload=payload, webhook_id=f"e5-{phase}")
            assert accepted.status_code == 200, (phase, accepted.text[:300])
            for name in ("ops-ann", "ops-ben"):
                session, home = _admin_session(server, name)
                assert name in home and ("ops-ben" if name == "ops-ann" else "ops-ann") not in home
                assert session not in sessions.values()
                sessions[(phase, name)] = session
            assert time.monotonic() - started < 20, phase  # degraded, never stuck
            if phase == "hung":
                redis_server.resume()

    assert set(WebhookDelivery.objects.filter(merchant=merchant).values_list("webhook_id", flat=True)) == {
        "e5-stopped",
        "e5-hung",
    }
    assert len(set(sessions.values())) == 4  # no session is ever shared


def _process_inbox(database_url: str) -> str:
    """Process every stored delivery in a separate process against the given database."""
    code = (
        "from django_scopes import scopes_disabled\n"
        "from apps.shopify.models import WebhookDelivery\n"
        "from apps.shopify.webhooks.inbox import webhook_delivery_process\n"
        "with scopes_disabled():\n"
        "    for d in WebhookDelivery.objects.select_related('merchant').order_by('received_at'):\n"
        "        webhook_delivery_process(merchant=d.merchant, delivery_id=d.pk)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test", "TEST_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.django_db(transaction=True)
def test_postgres_stopped_under_webhook_load_never_drops_and_resends_complete_the_ledger(binaries):
    MerchantFactory(shop_domain=SHOP)
    connection.close()
    orders = list(range(9100, 9160))
    with PostgresCluster() as cluster, RedisServer() as redis_server:
        cluster.copy_database_from(_database_url(), "loyalnest_e6")
        with Gunicorn(database_url=cluster.url("loyalnest_e6"), redis_url=redis_server.url) as server:

            def send(order_id):
                payload = json.dumps(order_payload(order_id, customer_id=order_id, total="10.00")).encode()
                try:
                    return order_id, server.post(
                        shop=SHOP, topic="orders/paid", payload=payload, webhook_id=f"e6-{order_id}"
                    ).status_code
                except httpx.TransportError:
                    return order_id, None  # no answer at all: Shopify retries it as a 5xx

            with ThreadPoolExecutor(max_workers=4) as pool:
                first = list(pool.map(send, orders[:20]))
                stopper = pool.submit(cluster.stop)
                during = list(pool.map(send, orders[20:40]))
                stopper.result()
                down = list(pool.map(send, orders[40:]))
            cluster.start()
            answers = dict(first + during + down)
            assert set(answers.values()) <= {200, 500, 502, 503, None}, answers
            assert all(status == 503 for _, status in down), down  # never 200 while down
            assert any(status == 200 for _, status in first)

            with cluster.connect("loyalnest_e6") as conn:
                stored = {row[0] for row in conn.execute("SELECT webhook_id FROM webhook_inbox")}
            accepted = {f"e6-{order}" for order, status in answers.items() if status == 200}
            assert accepted <= stored, accepted - stored  # every 200 was stored

            # Shopify re-sends whatever was not answered 200; a stored one is a duplicate.
            for order, status in answers.items():
                if status != 200:
                    assert send(order)[1] == 200

        _process_inbox(cluster.url("loyalnest_e6"))
        with cluster.connect("loyalnest_e6") as conn:
            ledger = conn.execute(
                "SELECT idempotency_key, points FROM points_transactions ORDER BY idempotency_key"
            ).fetchall()
            deliveries = conn.execute("SELECT count(*) FROM webhook_inbox").fetchone()[0]
    assert deliveries == len(orders)
    assert ledger == sorted((f"order:{order}:earn", 10) for order in orders)
