"""After-commit helpers: Redis Streams with PostgreSQL fallback, PostHog tracking, health."""

import socket

import pytest
from django.test import override_settings

from apps.core import redis as core_redis
from apps.core import tracking
from apps.core.services import points_earn
from apps.core.streams import stream_append, stream_latest
from tests.fakes.http import FakeServer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down():
    """Point the app at a port where no Redis listens."""
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        core_redis._client.cache_clear()
        yield
    core_redis._client.cache_clear()


def test_stream_keeps_the_latest_state_per_merchant(merchant, other_merchant):
    stream_append(merchant_id=merchant.pk, key="points:cus_1", data={"points_balance": 10})
    stream_append(merchant_id=merchant.pk, key="points:cus_1", data={"points_balance": 25})
    stream_append(merchant_id=other_merchant["merchant"].pk, key="points:cus_1", data={"points_balance": 999})

    latest = stream_latest(merchant_id=merchant.pk, key="points:cus_1", fallback=lambda: None)

    assert latest == {"points_balance": 25}


def test_stream_length_is_capped(merchant, settings):
    settings.STREAM_MAXLEN = 10
    for n in range(500):
        stream_append(merchant_id=merchant.pk, key="points:cus_cap", data={"n": n})

    assert core_redis.get_redis().xlen(f"{merchant.pk}:points:cus_cap") < 200


def test_an_empty_stream_falls_back_to_the_database(merchant):
    assert stream_latest(merchant_id=merchant.pk, key="points:none", fallback=lambda: {"from": "db"}) == {"from": "db"}


def test_with_redis_down_writes_succeed_and_reads_fall_back(
    merchant, customer, redis_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = points_earn(merchant=merchant, customer=customer, points=30, idempotency_key="e1")

    assert result.balance == 30
    assert stream_append(merchant_id=merchant.pk, key="points:x", data={}) is None
    fallback = stream_latest(merchant_id=merchant.pk, key=f"points:{customer.pk}", fallback=lambda: {"from": "db"})
    assert fallback == {"from": "db"}


def test_tracking_is_off_without_a_key(merchant):
    assert tracking.posthog_client() is None
    tracking.track("points_earn", merchant=merchant, distinct_id="cus_x")  # no error, nothing sent


def test_tracking_sends_events_to_posthog(merchant, customer, settings, django_capture_on_commit_callbacks):
    with FakeServer() as posthog:
        settings.POSTHOG_API_KEY = "phc_test"
        settings.POSTHOG_HOST = posthog.url
        with django_capture_on_commit_callbacks(execute=True):
            points_earn(merchant=merchant, customer=customer, points=30, idempotency_key="e1")
        tracking.flush()

    events = [event for request in posthog.requests for event in request.json()["batch"]]
    assert [(e["event"], e["distinct_id"]) for e in events] == [("points_earn", customer.pk)]
    assert events[0]["properties"]["merchant_id"] == merchant.pk
    assert customer.email not in str(events)  # no personal data leaves for analytics


def test_tracking_never_breaks_a_request_when_posthog_fails(merchant, customer, settings):
    with FakeServer(respond=lambda r: (503, {"error": "down"}, {})) as posthog:
        settings.POSTHOG_API_KEY = "phc_test_down"
        settings.POSTHOG_MAX_RETRIES = 0
        settings.POSTHOG_HOST = posthog.url
        tracking.track("points_earn", merchant=merchant, distinct_id=customer.pk)
        tracking.flush()
    settings.POSTHOG_HOST = f"http://127.0.0.1:{_closed_port()}"
    tracking.track("points_earn", merchant=merchant, distinct_id=customer.pk)
    tracking.flush()


def test_health_reports_each_dependency(api, db):
    response = api.get("/v1/api/health")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "postgresql": True,
        "redis": True,
        "broker": True,
    }


def test_health_with_redis_down_still_answers(api, db, redis_down, settings):
    settings.CELERY_BROKER_URL = settings.REDIS_URL

    response = api.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert body["healthy"] is False
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["broker"]["ok"] is False
    assert body["checks"]["postgresql"]["ok"] is True
