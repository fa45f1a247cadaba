"""Queue Celery work from a request without ever blocking it on a dead broker.

Every queued job here has a row in PostgreSQL that is the truth (an inbox delivery, a pending
redemption, an outbox notification); a beat sweep re-queues rows left behind. So when the broker is down the request
only stores its row and answers at once.
"""

import logging
import threading
import time
from functools import lru_cache

import redis
from celery import current_app

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _broker_probe(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)


class _BrokerHealth:
    """Whether the Redis broker answers, checked at most once a second with a 250 ms timeout.

    Publishing to a dead broker blocks for seconds inside kombu's connection retries, and the
    webhook view must answer well inside Shopify's 5 s. While the broker is down deliveries are
    only stored; the beat sweep queues them once it is back.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.checked_at = -1e9
        self.up = True

    def reachable(self) -> bool:
        url = str(current_app.conf.broker_url or "")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return True
        now = time.monotonic()
        if now - self.checked_at < 1.0:
            return self.up
        with self.lock:
            if now - self.checked_at >= 1.0:
                try:
                    self.up = bool(_broker_probe(url).ping())
                except redis.RedisError:
                    self.up = False
                self.checked_at = time.monotonic()
        return self.up


broker_health = _BrokerHealth()


def enqueue_unless_broker_down(task, *, kwargs: dict, countdown: float | None = None) -> bool:
    """Queue `task` now; False (and a warning without personal data) when the broker is down —
    the caller's row stays pending and its sweep queues it later."""
    if not broker_health.reachable():
        logger.warning("%s not queued (broker unreachable); its sweep will", task.name)
        return False
    try:
        task.apply_async(kwargs=kwargs, retry=False, countdown=countdown)
        return True
    except Exception as exc:  # any broker failure: the stored row is the truth
        logger.warning("%s not queued (%s); its sweep will", task.name, type(exc).__name__)
        return False
