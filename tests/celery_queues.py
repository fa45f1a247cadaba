"""What the test broker (Redis) holds: Celery messages across the four workload queues."""

import json

from django.conf import settings

from apps.core.redis import get_redis

ALL_QUEUES = ",".join(settings.WORKLOAD_QUEUES)  # the -Q of a worker that must take every task


def queued_raw() -> list[bytes]:
    """Raw messages of every workload queue, newest first within each queue (LPUSHed)."""
    redis = get_redis()
    return [raw for queue in settings.WORKLOAD_QUEUES for raw in redis.lrange(queue, 0, -1)]


def queued_messages() -> list[dict]:
    return [json.loads(raw) for raw in queued_raw()]


def queued_task_names() -> list[str]:
    return [message["headers"]["task"] for message in queued_messages()]


def worker_command(queues: str = ALL_QUEUES, *, hostname: str | None = None, pool: str = "solo") -> list[str]:
    """argv of a real test worker on `queues`, quiet on the network: one process (-P solo), or
    with `pool="prefork"` the production pool with one child (the pool that enforces time limits)."""
    import sys

    command = [sys.executable, "-m", "celery", "-A", "loyalnest", "worker", "-P", pool, "-Q", queues]
    if pool == "prefork":
        command += ["-c", "1"]
    if hostname:
        command += ["-n", hostname]
    return [*command, "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"]
