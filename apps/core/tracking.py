"""Product analytics through PostHog's own client. Off without a key; never breaks a request."""

import logging
from functools import lru_cache

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _client(api_key: str, host: str, max_retries: int):
    from posthog import Posthog

    return Posthog(api_key, host=host, timeout=3, max_retries=max_retries, disable_geoip=True)


def posthog_client():
    if not settings.POSTHOG_API_KEY:
        return None
    return _client(settings.POSTHOG_API_KEY, settings.POSTHOG_HOST, settings.POSTHOG_MAX_RETRIES)


def track(event: str, *, merchant, distinct_id: str, properties: dict | None = None) -> None:
    """Send an event now (queued by the client's background thread)."""
    client = posthog_client()
    if client is None:
        return
    try:
        client.capture(
            event,
            distinct_id=distinct_id,
            properties={"merchant_id": merchant.pk, **(properties or {})},
            groups={"merchant": merchant.pk},
        )
    except Exception:  # analytics must never break the merchant's request
        logger.warning("PostHog capture of %s failed", event, exc_info=True)


def track_on_commit(event: str, *, merchant, distinct_id: str, properties: dict | None = None) -> None:
    transaction.on_commit(lambda: track(event, merchant=merchant, distinct_id=distinct_id, properties=properties))


def flush() -> None:
    client = posthog_client()
    if client is not None:
        client.flush()
