"""Short-lived per-process caches for what every storefront request reads about its shop.

A web process keeps a value `STOREFRONT_LOCAL_CACHE_SECONDS` (cachetools' `TTLCache` behind a
lock: gunicorn may run threads). A change made in a process drops the key there at once
(`forget`); the other processes see it within that delay. Values are shared between requests:
callers must not change them. Tests start with every cache empty (tests/conftest.py).
"""

import threading
from collections.abc import Callable, Hashable

from cachetools import TTLCache
from django.conf import settings

_all: list["LocalCache"] = []


class LocalCache:
    def __init__(self, *, maxsize: int = 10_000, ttl: float | None = None):
        seconds = settings.STOREFRONT_LOCAL_CACHE_SECONDS if ttl is None else ttl
        self._entries: TTLCache = TTLCache(maxsize=maxsize, ttl=seconds)
        self._lock = threading.Lock()
        _all.append(self)

    def get(self, key: Hashable):
        with self._lock:
            return self._entries.get(key)

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._entries[key] = value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget_where(self, matches: Callable[[Hashable], bool]) -> None:
        with self._lock:
            for key in [key for key in self._entries if matches(key)]:
                self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def clear_all() -> None:
    """Empty every local cache of this process (tests)."""
    for cache in _all:
        cache.clear()


class ForgetsLocalCopies:
    """Model mixin: saving or deleting a row calls `local_copies_forget()`, which drops what this
    process keeps about the row's merchant."""

    def local_copies_forget(self) -> None:
        raise NotImplementedError

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        self.local_copies_forget()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        self.local_copies_forget()
        return result
