"""Redis Streams as a cache of the latest state (DESIGN "Redis Streams").

After commit, the new state is appended to `<merchant_id>:<stream key from the spec>` with a
capped length. Readers take the latest entry and fall back to PostgreSQL when Redis is down or
the stream is empty.
"""

import json
import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from .redis import get_redis

logger = logging.getLogger(__name__)


def stream_name(merchant_id: str, key: str) -> str:
    return f"{merchant_id}:{key}"


def _xadd(client, *, merchant_id: str, key: str, data: dict):
    return client.xadd(
        stream_name(merchant_id, key),
        {"data": json.dumps(data, cls=DjangoJSONEncoder)},
        maxlen=settings.STREAM_MAXLEN,
        approximate=True,
    )


def stream_append(*, merchant_id: str, key: str, data: dict) -> str | None:
    """Append `data` to the merchant's stream now; returns the entry id, None if Redis is down."""
    try:
        return _xadd(get_redis(), merchant_id=merchant_id, key=key, data=data)
    except redis.RedisError as exc:
        logger.warning("stream append to %s skipped: %s", key.split(":")[0], type(exc).__name__)
        return None


def stream_append_on_commit(*, merchant_id: str, key: str, data: dict) -> None:
    """Append once the surrounding transaction commits (never for rolled-back state)."""
    transaction.on_commit(lambda: stream_append(merchant_id=merchant_id, key=key, data=data))


def stream_append_many_on_commit(*, merchant_id: str, entries: list[tuple[str, dict]]) -> None:
    """Append many (key, data) entries after commit in one Redis round trip (batch writers)."""

    def append_all():
        try:
            pipeline = get_redis().pipeline(transaction=False)
            for key, data in entries:
                _xadd(pipeline, merchant_id=merchant_id, key=key, data=data)
            pipeline.execute()
        except redis.RedisError as exc:
            logger.warning("stream append of %s entries skipped: %s", len(entries), type(exc).__name__)

    if entries:
        transaction.on_commit(append_all)


def stream_latest(*, merchant_id: str, key: str, fallback: Callable[[], dict | None]) -> dict | None:
    """The newest entry of the stream, or `fallback()` (a PostgreSQL read) when unavailable."""
    try:
        entries = get_redis().xrevrange(stream_name(merchant_id, key), count=1)
    except redis.RedisError as exc:
        logger.warning("stream read of %s fell back to the database: %s", key.split(":")[0], type(exc).__name__)
        return fallback()
    if not entries:
        return fallback()
    _entry_id, fields = entries[0]
    return json.loads(fields["data"])


def stream_delete(*, merchant_id: str, keys: list[str]) -> None:
    """Remove streams outright (GDPR erasure)."""
    if keys:
        try:
            get_redis().delete(*(stream_name(merchant_id, key) for key in keys))
        except redis.RedisError as exc:
            logger.warning("stream delete skipped: %s", type(exc).__name__)
            raise
