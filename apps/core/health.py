"""Liveness of what LoyalNest depends on (RELIABILITY E8)."""

import time

from django.conf import settings
from django.db import connection


def _timed(check):
    started = time.perf_counter()
    try:
        check()
        ok, error = True, None
    except Exception as exc:  # a health check reports failures, it does not raise them
        ok, error = False, type(exc).__name__
    return {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1), "error": error}


def _postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis():
    from .redis import get_redis

    get_redis().ping()


def _broker():
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1, transport_options={"socket_timeout": 1}) as conn:
        conn.ensure_connection(max_retries=0, timeout=1)


def health_report() -> dict:
    checks = {"postgresql": _timed(_postgresql), "redis": _timed(_redis), "broker": _timed(_broker)}
    checks["postgresql"]["engine"] = connection.vendor
    healthy = all(check["ok"] for check in checks.values())
    return {"healthy": healthy, "checks": checks}
