"""Fixed-window request counters in Redis for the storefront (RELIABILITY D3).

A rate is written `"<requests>/<seconds>"` (`"120/60"`: 120 requests a minute). Each counter
is one Redis key, `ratelimit:<merchant_id>:<bucket>:<who>:<window>`, incremented with INCR
and given an expiry by one Lua script for all of a request's counters (one command, one round
trip), so it disappears on its own after its window.
Keys carry the merchant id (B3). Shoppers' IP addresses are keyed by a keyed hash, never
stored as such.

`rate_limit_hit` raises `redis.RedisError` when Redis is unreachable: the caller decides
whether to serve the request anyway (reads) or refuse it (point redemptions).
"""

import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import lru_cache

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
    keys, expiries, window_ends = [], [], []
    for counter in counters:
        window = counter.rate.window_seconds
        index = int(now // window)
        keys.append(f"ratelimit:{merchant_id}:{counter.bucket}:{counter.who}:{index}")
        expiries.append(window + 1)
        window_ends.append((index + 1) * window)
    client = get_redis()
    counts = _count_script(client)(keys=keys, args=expiries, client=client)
    waits = [
        window_end - now
        for counter, window_end, count in zip(counters, window_ends, counts, strict=True)
        if int(count) > counter.rate.limit
    ]
    return max(waits) if waits else None


# INCR every key and (re-)arm its expiry — harmless on every hit: the window index is in the key.
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[i])
end
return counts
"""


@lru_cache(maxsize=4)
def _count_script(client):
    """The counting script for this client (EVALSHA, loaded again if Redis lost it)."""
    return client.register_script(_COUNT)
