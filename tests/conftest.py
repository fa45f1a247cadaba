import contextlib

import pytest
import redis
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from apps.core.redis import get_redis
from tests.factories import CustomerFactory, MerchantFactory, StaffMemberFactory


@pytest.fixture(autouse=True)
def _unscoped_setup():
    """Test bodies arrange data across merchants; code under test enters scopes itself."""
    with scopes_disabled():
        yield


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty test Redis database (db 9 by default)."""
    # Tests that stop Redis on purpose restart it themselves.
    with contextlib.suppress(redis.RedisError):
        get_redis().flushdb()
    yield


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """What web processes keep a few seconds (shop → merchant, widget content, beta flags) starts
    empty in every test; within a test it behaves as in production."""
    from apps.core import local_cache

    local_cache.clear_all()
    yield


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def merchant(db):
    return MerchantFactory(shop_domain="alpha-pets.myshopify.com", name="Alpha Pets")


@pytest.fixture
def other_merchant(db):
    """The second merchant every API test seeds, to prove none of its data leaks."""
    merchant = MerchantFactory(shop_domain="beta-gadgets.myshopify.com", name="Beta Gadgets")
    owner = StaffMemberFactory(merchant=merchant, shopify_user_id="80001", role="owner")
    customers = CustomerFactory.create_batch(3, merchant=merchant, points_balance=0)
    return {"merchant": merchant, "owner": owner, "customers": customers}


@pytest.fixture
def owner(merchant):
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90001", role="owner")


@pytest.fixture
def customer(merchant):
    return CustomerFactory(merchant=merchant)


@pytest.fixture(scope="session")
def shopify_relay():
    """A loopback address that stays put for the whole session and forwards to the current
    test's fake Shopify: the Celery worker process is started once, so it is pointed here."""
    from tests.fakes.http import FakeServer

    state = {"fake": None}

    def respond(request):
        fake = state["fake"]
        if fake is None:
            return 503, {"errors": "No fake Shopify in this test"}, {}
        return fake._respond(request)

    with FakeServer(respond=respond) as server:
        server.state = state
        yield server


@pytest.fixture(scope="session")
def worker_apns():
    """A fake APNs (HTTP/2) for the whole session with a throwaway token key: the Celery worker
    is started once, so its wallet settings point here (`.env`); tests clear `.pushes`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.fakes.apns import FakeApns

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with FakeApns() as apns:
        apns.public_key = key.public_key()
        apns.env = {
            "WALLET_APNS_BASE_URL": apns.url,
            "WALLET_APNS_KEY_ID": "WORKERKEY1",
            "WALLET_APNS_KEY": pem,
            "WALLET_APPLE_PASS_TYPE_ID": "pass.test.loyalnest",  # tests/wallet/conftest.py PASS_TYPE_ID
            "WALLET_APPLE_TEAM_ID": "TEAMID1234",
        }
        yield apns


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, shopify_relay, worker_apns):
    """A real Celery worker process on the test database and the test Redis broker."""
    import os
    import subprocess
    import time
    from pathlib import Path

    from django.conf import settings
    from django.db import connection

    from tests.celery_queues import worker_command

    root = Path(__file__).resolve().parents[1]
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test",
        "TEST_DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "TEST_REDIS_URL": settings.REDIS_URL,
        "SHOPIFY_API_BASE_URL": shopify_relay.url,
        **worker_apns.env,
    }
    (root / "var").mkdir(exist_ok=True)
    log = open(root / "var" / "test-celery-worker.log", "w")  # noqa: SIM115  (closed at teardown)
    process = subprocess.Popen(
        worker_command(),
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "ready" in (root / "var" / "test-celery-worker.log").read_text():
            break
        if process.poll() is not None:
            raise RuntimeError((root / "var" / "test-celery-worker.log").read_text())
        time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError("the Celery worker did not start")
    yield process
    process.terminate()
    process.wait(timeout=10)
    log.close()


def wait_for(condition, timeout=20.0, interval=0.1):
    """Poll until `condition()` is true (work done by another process); fail after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
def fake_shopify(settings, shopify_relay):
    """The fake Shopify on loopback, with every operation of tests/fakes/shopify_operations."""
    from apps.shopify import http as shopify_http
    from tests.fakes.shopify import FakeShopify
    from tests.fakes.shopify_operations import register_all

    fake = FakeShopify(client_id=settings.SHOPIFY_API_KEY, client_secret=settings.SHOPIFY_API_SECRET)
    register_all(fake)
    with fake:
        settings.SHOPIFY_API_BASE_URL = fake.url
        shopify_http._client.cache_clear()
        shopify_relay.state["fake"] = fake  # the Celery worker process reaches it through the relay
        yield fake
        shopify_relay.state["fake"] = None
    shopify_http._client.cache_clear()


# --- Notifications: fake Klaviyo, Postscript and Slack, reached by this process and the worker.
NOTIFICATION_PROVIDERS = {
    "klaviyo": "NOTIFICATIONS_KLAVIYO_BASE_URL",
    "postscript": "NOTIFICATIONS_POSTSCRIPT_BASE_URL",
    "slack": "NOTIFICATIONS_SLACK_WEBHOOK_BASE_URL",
}
NOTIFICATION_WORKER_ENV = {
    # Short backoff so the retry tests run in seconds; LoyalNest's own Klaviyo key for staff mail.
    "NOTIFICATIONS_BACKOFF_BASE_SECONDS": "0.2",
    "NOTIFICATIONS_KLAVIYO_PRIVATE_KEY": "pk_loyalnest_test",
}


@pytest.fixture(scope="session", autouse=True)
def notification_providers_relay():
    """Loopback addresses that stay put for the session and forward to the current test's fake
    providers. Set in the environment before the Celery worker process starts (autouse
    session fixtures come first), so the worker sends there too."""
    import os

    from tests.fakes.http import FakeServer

    state = {}
    servers = {}
    for name, variable in NOTIFICATION_PROVIDERS.items():

        def respond(request, name=name):
            fake = state.get(name)
            if fake is None:
                return 503, {"errors": [{"detail": f"no fake {name} in this test"}]}, {}
            return fake._respond(request)

        servers[name] = FakeServer(respond=respond).__enter__()
        os.environ[variable] = servers[name].url
    os.environ["NOTIFICATIONS_SLACK_API_BASE_URL"] = servers["slack"].url + "/api/"
    for variable, value in NOTIFICATION_WORKER_ENV.items():
        os.environ.setdefault(variable, value)
    relay = type("Relay", (), {"state": state, "servers": servers})()
    yield relay
    for server in servers.values():
        server.__exit__(None, None, None)


@pytest.fixture
def fake_providers(settings, notification_providers_relay):
    """Fake Klaviyo, Postscript and Slack for this test, in this process and the worker."""
    from apps.notifications import breakers
    from tests.fakes.notifications import FakeProviders

    relay = notification_providers_relay
    with FakeProviders() as fakes:
        for name, variable in NOTIFICATION_PROVIDERS.items():
            setattr(settings, variable, relay.servers[name].url)
            relay.state[name] = getattr(fakes, name)
        settings.NOTIFICATIONS_SLACK_API_BASE_URL = relay.servers["slack"].url + "/api/"
        settings.NOTIFICATIONS_KLAVIYO_PRIVATE_KEY = NOTIFICATION_WORKER_ENV["NOTIFICATIONS_KLAVIYO_PRIVATE_KEY"]
        settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS = float(
            NOTIFICATION_WORKER_ENV["NOTIFICATIONS_BACKOFF_BASE_SECONDS"]
        )
        breakers._breakers.clear()
        yield fakes
        relay.state.clear()
    breakers._breakers.clear()


@pytest.fixture
def broker_down():
    """The broker unreachable from this process (a closed port), as when Redis stops; the
    machine's Redis keeps running for the worker and everyone else. Nothing this test queues
    reaches the session's Celery worker. Call `.restore()` to bring the broker back."""
    from types import SimpleNamespace

    from celery import current_app

    from apps.core import queueing

    def set_broker(url):
        current_app.conf.broker_url = url
        queueing.broker_health.checked_at = -1e9  # forget the last health probe

    original = current_app.conf.broker_url
    set_broker("redis://127.0.0.1:1/0")
    yield SimpleNamespace(restore=lambda: set_broker(original))
    set_broker(original)
