"""The widget contributor registry: features built later plug their data into the widgets.

A feature app registers from its `AppConfig.ready()` (through `apps.theme_extensions.services`):

    register_widget_contributor("badges", badges_for_widget)

where `badges_for_widget(*, merchant, customer, locale) -> dict | None` returns JSON-ready data
for the shopper (None: nothing to show). It runs inside the merchant's scope on every widget
request, so it must be quick. A contributor that reads several tables registers with
`cache_seconds`: its answer for a logged-in shopper is kept in Redis per (shopper, locale) for
that long — every cached contributor of a request is read with one MGET — and the feature calls
`forget(merchant_id=…, customer_ids=…)` after commit when what it shows changed. A contributor
that raises is logged and left out: one feature's failure never breaks the widget.
"""

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from django.core.serializers.json import DjangoJSONEncoder

from apps.core.locales import LOCALES
from apps.core.redis import get_redis

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Contributor:
    fn: Callable
    cache_seconds: int = 0


_contributors: dict[str, Contributor] = {}


def register(name: str, fn: Callable, *, cache_seconds: int = 0) -> None:
    if not NAME.match(name):
        raise ValueError(f"invalid widget contributor name: {name!r}")
    existing = _contributors.get(name)
    if existing is not None and existing.fn is not fn:
        raise ValueError(f"widget contributor {name!r} is already registered")
    _contributors[name] = Contributor(fn=fn, cache_seconds=cache_seconds)


def unregister(name: str) -> None:
    _contributors.pop(name, None)


def registered() -> tuple[str, ...]:
    return tuple(sorted(_contributors))


def _cache_key(merchant_id: str, customer_id: str, name: str, locale: str) -> str:
    return f"{merchant_id}:widget-contribution:{customer_id}:{name}:{locale}"


def _cached(merchant, customer, locale: str, names: list[str]) -> dict:
    """The cached answers of `names` (missing ones left out); {} when Redis is unavailable."""
    if customer is None or not names:
        return {}
    try:
        values = get_redis().mget([_cache_key(merchant.pk, customer.pk, name, locale) for name in names])
    except redis.RedisError as exc:
        logger.warning("widget contributions computed without the cache: %s", type(exc).__name__)
        return {}
    return {name: json.loads(value) for name, value in zip(names, values, strict=True) if value is not None}


def _cache_store(merchant, customer, locale: str, fresh: dict[str, tuple[object, int]]) -> None:
    if customer is None or not fresh:
        return
    try:
        pipeline = get_redis().pipeline(transaction=False)
        for name, (value, seconds) in fresh.items():
            key = _cache_key(merchant.pk, customer.pk, name, locale)
            pipeline.set(key, json.dumps(value, cls=DjangoJSONEncoder), ex=seconds)
        pipeline.execute()
    except redis.RedisError as exc:
        logger.warning("widget contributions not cached: %s", type(exc).__name__)


def widget_contributions(*, merchant, customer, locale: str) -> dict:
    contributors = sorted(_contributors.items())
    cached = _cached(merchant, customer, locale, [name for name, c in contributors if c.cache_seconds])
    result, fresh = {}, {}
    for name, contributor in contributors:
        if name in cached:
            value = cached[name]
        else:
            try:
                value = contributor.fn(merchant=merchant, customer=customer, locale=locale)
            except Exception:
                logger.warning("widget contributor %s failed", name, exc_info=True)
                continue
            if contributor.cache_seconds:
                fresh[name] = (value, contributor.cache_seconds)
        if value is not None:
            result[name] = value
    _cache_store(merchant, customer, locale, fresh)
    return result


def forget(*, merchant_id: str, customer_ids: Iterable[str], names: Iterable[str] | None = None) -> None:
    """Drop the cached answers of these shoppers (every locale; `names` or every contributor)."""
    names = list(names) if names is not None else [n for n, c in _contributors.items() if c.cache_seconds]
    keys = [
        _cache_key(merchant_id, customer_id, name, code)
        for customer_id in customer_ids
        for name in names
        for code in LOCALES
    ]
    if not keys:
        return
    try:
        client = get_redis()
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    except redis.RedisError as exc:
        # Stale for at most the contributor's cache_seconds.
        logger.warning("widget contributions not forgotten: %s", type(exc).__name__)
