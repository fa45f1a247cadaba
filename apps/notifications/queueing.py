"""Kick the relay without ever blocking the caller on a dead broker.

The outbox row in PostgreSQL is the truth; a kick only makes it go out sooner. When the broker
(Redis) is down the kick is dropped and the beat relay picks the row up once it is back.
"""

import logging
import time
from functools import lru_cache

import redis
from celery import current_app

logger = logging.getLogger(__name__)

_probe_state = {"checked_at": -1e9, "up": True}


@lru_cache(maxsize=4)
def _probe(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)


def broker_reachable() -> bool:
    """A Redis broker that answered a ping in the last second (kombu would block for seconds)."""
    url = str(current_app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return True
    now = time.monotonic()
    if now - _probe_state["checked_at"] >= 1.0:
        try:
            _probe_state["up"] = bool(_probe(url).ping())
        except redis.RedisError:
            _probe_state["up"] = False
        _probe_state["checked_at"] = time.monotonic()
    return _probe_state["up"]


def relay_kick(countdown: float | None = None) -> bool:
    """Queue a relay run (now, or after `countdown` seconds); False when the broker is down."""
    from .tasks import notifications_relay_task

    if not broker_reachable():
        logger.warning("notification relay not kicked (broker unreachable); the beat relay will run it")
        return False
    try:
        notifications_relay_task.apply_async(countdown=countdown, retry=False)
        return True
    except Exception as exc:  # any broker failure: the outbox row is the truth
        logger.warning("notification relay not kicked (%s); the beat relay will run it", type(exc).__name__)
        return False


def send_enqueue(notification_ids: list[str]) -> bool:
    """Hand claimed notifications to a send task; False when the broker refused them."""
    from .tasks import notification_send_task

    try:
        notification_send_task.apply_async(kwargs={"notification_ids": notification_ids}, retry=False)
        return True
    except Exception as exc:
        logger.warning(
            "%d notifications not queued (%s); released for the relay", len(notification_ids), type(exc).__name__
        )
        return False
