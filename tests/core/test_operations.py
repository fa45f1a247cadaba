"""Operations: every task on one of the four workload queues, every beat job a real task, and
two real Celery workers on different queues sharing one database and broker without doing any
piece of work twice (docs/OPERATIONS.md, docs/SCALING.md)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

from apps.core.models import PointsTransaction
from apps.notifications.models import Notification, State
from apps.notifications.services import notify
from apps.shopify.models import WebhookDelivery, WebhookStatus
from apps.shopify.webhooks.tasks import inbox_drain_enqueue
from loyalnest.celery import app as celery_app
from tests.celery_queues import worker_command
from tests.conftest import wait_for
from tests.factories import MerchantFactory
from tests.notifications.support import connect_providers, subscribed_customer
from tests.shopify.webhook_support import order_payload, post_webhook

ROOT = Path(__file__).resolve().parents[2]
QUEUES = {"default", "notifications", "analytics", "shopify"}


def _our_tasks() -> list[str]:
    celery_app.loader.import_default_modules()
    return sorted(name for name in celery_app.tasks if not name.startswith("celery."))


def test_every_registered_task_resolves_to_one_of_the_four_workload_queues():
    assert set(settings.WORKLOAD_QUEUES) == QUEUES
    assert {queue.name for queue in celery_app.conf.task_queues} == QUEUES
    assert celery_app.conf.task_default_queue == "default"
    routed = {name: celery_app.amqp.router.route({}, name)["queue"].name for name in _our_tasks()}

    assert len(routed) > 30
    assert {name for name, queue in routed.items() if queue not in QUEUES} == set()
    # Spot checks of the split the docs describe.
    assert routed["apps.shopify.webhooks.tasks.webhook_inbox_drain_task"] == "shopify"
    assert routed["apps.notifications.tasks.notifications_relay_task"] == "notifications"
    assert routed["apps.notifications.tasks.notification_send_task"] == "notifications"
    assert routed["apps.rfm.tasks.rfm_scores_refresh_task"] == "analytics"
    assert routed["apps.rfm.tasks.rfm_benchmarks_metafield_sync_task"] == "shopify"
    assert routed["apps.gamification.tasks.gamification_nightly_task"] == "analytics"
    assert routed["apps.core.tasks.idempotency_records_purge_task"] == "default"
    assert set(routed.values()) == QUEUES  # every queue has work: none is a dead end


def test_every_beat_job_names_a_registered_task_on_a_workload_queue():
    registered = set(_our_tasks())
    schedule = settings.CELERY_BEAT_SCHEDULE

    assert len(schedule) >= 10
    missing = {key: entry["task"] for key, entry in schedule.items() if entry["task"] not in registered}
    assert missing == {}
    for entry in schedule.values():
        assert celery_app.amqp.router.route({}, entry["task"])["queue"].name in QUEUES


def test_a_worker_without_q_takes_every_workload_queue():
    """`celery worker` with no -Q consumes task_queues: nothing is stranded by a forgotten flag."""
    assert set(celery_app.amqp.queues) == QUEUES
    assert celery_app.conf.task_create_missing_queues is False


def test_the_production_gunicorn_config_loads_with_persistent_connections_and_recycling():
    env = {**os.environ, "WEB_CONCURRENCY": "3", "GUNICORN_MAX_REQUESTS": "500"}
    command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--check-config", "loyalnest.wsgi"]
    assert subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60).returncode == 0

    namespace = _gunicorn_config()
    assert namespace["timeout"] == 30 and namespace["max_requests"] > 0 and namespace["max_requests_jitter"] > 0
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0 or settings.DATABASES["default"]["CONN_HEALTH_CHECKS"]


def _gunicorn_config() -> dict:
    namespace = {}
    exec(compile((ROOT / "deploy" / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    return namespace


def test_the_workers_heartbeat_file_is_kept_in_memory_unless_told_otherwise(monkeypatch, tmp_path):
    # A disk-backed heartbeat file cost the storefront endpoint ~15 % of its throughput.
    monkeypatch.delenv("GUNICORN_WORKER_TMP_DIR", raising=False)
    assert _gunicorn_config()["worker_tmp_dir"] == ("/dev/shm" if Path("/dev/shm").is_dir() else None)

    monkeypatch.setenv("GUNICORN_WORKER_TMP_DIR", str(tmp_path))
    assert _gunicorn_config()["worker_tmp_dir"] == str(tmp_path)


# --- Two workers on different queues, one database, one broker ----------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process, log_path: Path, what: str, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log_path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    """A Redis server of this module's own (broker, cache and streams of both workers), so a
    session worker started by other tests, which takes every queue, cannot steal the work."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("redis") / "redis.log"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""],
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    _wait_ready(process, log_path, "redis-server", "Ready to accept connections")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def two_workers(django_db_setup, django_db_blocker, private_redis, shopify_relay, notification_providers_relay):
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test",
        "TEST_DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "TEST_REDIS_URL": private_redis,
        "SHOPIFY_API_BASE_URL": shopify_relay.url,
    }
    (ROOT / "var").mkdir(exist_ok=True)
    workers = {}
    for name, queues in {"shopify": "shopify", "rest": "default,notifications,analytics"}.items():
        log_path = ROOT / "var" / f"test-ops-worker-{name}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            worker_command(queues, hostname=f"{name}@%h"),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        workers[name] = (process, log_path, log)
    try:
        for name, (process, log_path, _log) in workers.items():
            _wait_ready(process, log_path, f"worker {name}", "ready")
        yield {name: log_path for name, (_p, log_path, _l) in workers.items()}
    finally:
        for process, _log_path, _log in workers.values():
            process.terminate()
        for process, _log_path, log in workers.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


@pytest.fixture
def publish_to(two_workers, private_redis):
    """This process publishes to the private broker too (producer pool rebuilt both ways)."""

    def use(url):
        # kombu keeps one pool per broker URL process-wide: switching back finds the old one open.
        current_app.conf.broker_url = url
        current_app._pool = None
        current_app.amqp._producer_pool = None

    from apps.core.queueing import broker_health

    original = current_app.conf.broker_url
    use(private_redis)
    broker_health.checked_at = -1e9
    yield two_workers
    use(original)
    broker_health.checked_at = -1e9


def _received_tasks(log_path: Path) -> Counter:
    return Counter(re.findall(r"Task ([\w.]+)\[[0-9a-f-]+\] received", log_path.read_text(errors="replace")))


@pytest.mark.celery_worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_different_queues_share_the_work_and_do_nothing_twice(publish_to, fake_providers):
    logs = publish_to
    shops = [MerchantFactory(shop_domain=f"ops-shop-{index}.myshopify.com") for index in range(3)]
    orders = {}
    for index, shop in enumerate(shops):
        for number in range(4):
            order_id = 7000 + index * 10 + number
            orders[order_id] = shop
            response = post_webhook(
                Client(),
                shop=shop.shop_domain,
                topic="orders/paid",
                payload=order_payload(order_id, total=f"{10 + number}.00"),
                webhook_id=f"ops-{order_id}",
            )
            assert response.status_code == 200
            # Shopify sends each webhook again now and then: stored once.
            post_webhook(
                Client(),
                shop=shop.shop_domain,
                topic="orders/paid",
                payload=order_payload(order_id, total=f"{10 + number}.00"),
                webhook_id=f"ops-{order_id}",
            )
        # Extra drains of the same inbox, as a sweep racing the view would queue.
        for _ in range(3):
            assert inbox_drain_enqueue(merchant_id=shop.pk)
    notifications = []
    for shop in shops:
        connect_providers(shop)
        with transaction.atomic():
            notifications += notify(
                merchant=shop,
                type="badge_earned",
                customer=subscribed_customer(shop),
                context={"badge": {"en": "Seasonal Star"}},
                idempotency_key=f"ops-badge-{shop.pk}",
                channels=("email",),
            )

    wait_for(
        lambda: (
            not WebhookDelivery.objects.filter(merchant__in=shops, status=WebhookStatus.RECEIVED).exists()
            and Notification.objects.filter(pk__in=[row.pk for row in notifications], state=State.SENT).count()
            == len(notifications)
        ),
        timeout=25,
    )

    # Each delivery stored and processed once; each order credited once, to its own shop.
    assert WebhookDelivery.objects.filter(merchant__in=shops).count() == len(orders)
    assert set(WebhookDelivery.objects.filter(merchant__in=shops).values_list("status", flat=True)) == {
        WebhookStatus.PROCESSED
    }
    ledger = Counter(PointsTransaction.objects.filter(merchant__in=shops).values_list("merchant_id", "idempotency_key"))
    assert ledger == Counter({(shop.pk, f"order:{order_id}:earn"): 1 for order_id, shop in orders.items()})
    # Each notification sent once.
    assert sorted(fake_providers.klaviyo.events) == sorted(row.pk for row in notifications)
    assert len(fake_providers.klaviyo.events) == len(notifications)

    # Each worker only ever ran tasks of its own queues, and both did work.
    shopify_tasks, other_tasks = _received_tasks(logs["shopify"]), _received_tasks(logs["rest"])
    route = celery_app.amqp.router.route
    assert shopify_tasks["apps.shopify.webhooks.tasks.webhook_inbox_drain_task"] >= len(shops)
    assert other_tasks["apps.notifications.tasks.notifications_relay_task"] >= 1
    assert {route({}, name)["queue"].name for name in shopify_tasks} == {"shopify"}
    assert {route({}, name)["queue"].name for name in other_tasks} <= {"default", "notifications", "analytics"}
