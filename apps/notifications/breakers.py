"""Circuit breakers (E4): one per provider credential and one per provider, state in Redis.

While a breaker is open no call reaches the provider and the notification waits (`pending`,
no attempt used). After `NOTIFICATIONS_BREAKER_RESET_SECONDS` one trial call goes through
(half-open): success closes the circuit, failure opens it again. Only failures a retry could
fix count (5xx, 429, timeouts); a 4xx is the notification's fault, not the provider's.

State lives in Redis so every worker sees the same circuit. When Redis is down pybreaker
falls back to `closed`: sending goes on, guarded by the per-notification attempt limit.
"""

import contextlib
from datetime import datetime, timedelta
from functools import lru_cache

import pybreaker
import redis
from django.conf import settings

from .providers.base import ProviderError

CircuitOpen = pybreaker.CircuitBreakerError


class _RedisStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage, which already survives Redis errors on every read and write
    but not while being created."""

    def _initialize_redis_state(self, state: str) -> None:
        with contextlib.suppress(redis.RedisError):
            super()._initialize_redis_state(state)


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # pybreaker decodes bytes itself: this client must not decode responses.
    timeout = settings.REDIS_SOCKET_TIMEOUT
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _excluded(exc: BaseException) -> bool:
    return isinstance(exc, CircuitOpen) or (isinstance(exc, ProviderError) and not exc.retryable)


_breakers: dict[tuple, pybreaker.CircuitBreaker] = {}


def breaker(name: str, *, fail_max: int) -> pybreaker.CircuitBreaker:
    key = (name, fail_max, settings.NOTIFICATIONS_BREAKER_RESET_SECONDS, settings.REDIS_URL)
    found = _breakers.get(key)
    if found is None:
        storage = _RedisStorage(pybreaker.STATE_CLOSED, _redis(settings.REDIS_URL), namespace=f"loyalnest:ntf:{name}")
        found = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=settings.NOTIFICATIONS_BREAKER_RESET_SECONDS,
            exclude=[_excluded],
            state_storage=storage,
            # On the failure that trips the circuit, raise that failure: a call was made.
            throw_new_error_on_trip=False,
            name=name,
        )
        _breakers[key] = found
    return found


def guarded_call(*, provider: str, credential_key: str, call):
    """Run `call` through the provider's and the credential's breakers. Raises CircuitOpen
    (nothing was called) or whatever `call` raised."""
    provider_breaker = breaker(provider, fail_max=settings.NOTIFICATIONS_BREAKER_PROVIDER_FAIL_MAX)
    credential_breaker = breaker(credential_key, fail_max=settings.NOTIFICATIONS_BREAKER_FAIL_MAX)
    return provider_breaker.call(credential_breaker.call, call)


def reopens_at(*, provider: str, credential_key: str) -> datetime | None:
    """When the open breaker in the way lets a trial call through (None: none is open)."""
    reset = timedelta(seconds=settings.NOTIFICATIONS_BREAKER_RESET_SECONDS)
    times = []
    for name, fail_max in (
        (provider, settings.NOTIFICATIONS_BREAKER_PROVIDER_FAIL_MAX),
        (credential_key, settings.NOTIFICATIONS_BREAKER_FAIL_MAX),
    ):
        circuit = breaker(name, fail_max=fail_max)
        if circuit.current_state == pybreaker.STATE_OPEN:
            opened_at = circuit._state_storage.opened_at
            if opened_at is not None:
                times.append(opened_at + reset)
    return max(times) if times else None
