"""Fixed-window request counters in Redis for the storefront (RELIABILITY D3).

A rate is written `"<requests>/<seconds>"` (`"120/60"`: 120 requests a minute). Each counter
is one Redis key, `ratelimit:<merchant_id>:<bucket>:<who>:<window>`, incremented with INCR
and given an expiry in the same round trip, so it disappears on its own after its window.
Keys carry the merchant id (B3). Shoppers' IP addresses are keyed by a keyed hash, never
stored as such.

`rate_limit_hit` raises `redis.RedisError` when Redis is unreachable: the caller decides
whether to serve the request anyway (reads) or refuse it (point redemptions).
"""

import hashlib
import hmac
import time
from dataclasses import dataclass

from django.conf import settings

from apps.core.redis import get_redis


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, value: str) -> "Rate":
        """Parse `"<requests>/<seconds>"`; refuse anything else loudly (a typo must not disable limits)."""
        try:
            limit, window = (int(part) for part in str(value).split("/"))
        except ValueError as exc:
            raise ValueError(f"rate must look like '120/60', not {value!r}") from exc
        if limit < 1 or window < 1:
            raise ValueError(f"rate must be positive, not {value!r}")
        return cls(limit=limit, window_seconds=window)


@dataclass(frozen=True)
class Counter:
    """One counter to increment: `rate` allowed per window for `who` in `bucket`."""

    bucket: str
    who: str
    rate: Rate


def client_fingerprint(address: str) -> str:
    """A stable, non-reversible key for an IP address (personal data stays out of Redis)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256).hexdigest()
    return f"ip:{digest[:24]}"


def rate_limit_hit(*, merchant_id: str, counters: list[Counter], now: float | None = None) -> float | None:
    """Count one request against every counter; return seconds to wait when one is over, else None.

    Raises `redis.RedisError` when Redis cannot be reached.
    """
    now = time.time() if now is None else now
    pipeline = get_redis().pipeline(transaction=False)
    keys = []
    for counter in counters:
        window = counter.rate.window_seconds
        index = int(now // window)
        key = f"ratelimit:{merchant_id}:{counter.bucket}:{counter.who}:{index}"
        keys.append((counter, (index + 1) * window))
        pipeline.incr(key)
        # Re-arming the expiry on every hit is harmless: the window index is in the key.
        pipeline.expire(key, window + 1)
    results = pipeline.execute()
    waits = [
        window_end - now
        for (counter, window_end), count in zip(keys, results[::2], strict=True)
        if int(count) > counter.rate.limit
    ]
    return max(waits) if waits else None
