"""Celery tasks of the webhook inbox and reconciliation: ids in, one service call each (E1, B3)."""

import contextlib
import logging
from collections import Counter
from datetime import timedelta

import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from apps.core.models import Merchant
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.redis import get_redis

from ..graphql import ShopifyAuthError, ShopifyError
from .inbox import (
    DeliveryRetry,
    retry_delay,
    webhook_delivery_process,
    webhook_inbox_drain,
    webhook_inbox_stale_list,
)
from .reconciliation import orders_reconcile, reconcilable_merchant_ids

logger = logging.getLogger(__name__)

# Set while a shop's drain task is queued and not yet started: a burst publishes one task.
DRAIN_FLAG_SECONDS = 30


def _countdown(retries: int) -> float:
    return retry_delay(retries + 1)


def _drain_flag(merchant_id: str) -> str:
    return f"{merchant_id}:webhooks:drain-queued"


def enqueue_delivery(*, merchant_id: str, delivery_id: str) -> bool:
    """Queue processing of one delivery now (admin reprocess); False when the broker is
    unreachable (the beat sweep queues it later — the delivery is safe in PostgreSQL, E5)."""
    return enqueue_unless_broker_down(
        webhook_delivery_process_task, kwargs={"merchant_id": merchant_id, "delivery_id": delivery_id}
    )


def inbox_drain_request(*, merchant_id: str) -> bool:
    """After a delivery is stored: make sure a drain of the shop's inbox is queued. One Redis
    `SET NX` per delivery; only the first of a burst publishes a task. The task clears the flag
    before it looks for work, so a delivery stored after its last look queues the next one.
    False when Redis or the broker is unreachable (the beat sweep queues the drain)."""
    try:
        first = get_redis().set(_drain_flag(merchant_id), "1", nx=True, ex=DRAIN_FLAG_SECONDS)
    except redis.RedisError as exc:
        logger.warning("webhook drain not requested (%s); the sweep will", type(exc).__name__)
        return False
    return inbox_drain_enqueue(merchant_id=merchant_id) if first else True


def inbox_drain_enqueue(*, merchant_id: str, countdown: float | None = None) -> bool:
    return enqueue_unless_broker_down(
        webhook_inbox_drain_task, kwargs={"merchant_id": merchant_id}, countdown=countdown
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def webhook_inbox_drain_task(self, *, merchant_id: str) -> int:
    """Process a shop's waiting deliveries in batches until none is left (or yield to other
    shops after SHOPIFY_WEBHOOK_DRAIN_MAX_BATCHES batches, queueing the rest)."""
    with contextlib.suppress(redis.RedisError):  # the flag expires on its own; the sweep covers
        get_redis().delete(_drain_flag(merchant_id))
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        return 0
    limit = settings.SHOPIFY_WEBHOOK_BATCH_SIZE
    taken = 0
    try:
        for _ in range(settings.SHOPIFY_WEBHOOK_DRAIN_MAX_BATCHES):
            drained = webhook_inbox_drain(merchant=merchant, limit=limit)
            taken += drained.claimed
            if drained.retry_in is not None:
                inbox_drain_enqueue(merchant_id=merchant_id, countdown=drained.retry_in)
            if drained.claimed < limit:
                return taken
    except SoftTimeLimitExceeded:
        # Every batch commits on its own: what is left stays `received` for the next drain.
        logger.warning("webhook drain of %s hit its time limit after %s deliveries; continued", merchant_id, taken)
    except DatabaseError as exc:
        if self.request.retries >= settings.SHOPIFY_WEBHOOK_MAX_ATTEMPTS * 2:
            logger.warning("webhook drain of %s left for the sweep", merchant_id)
            return taken
        raise self.retry(countdown=_countdown(self.request.retries), exc=exc) from exc
    inbox_drain_enqueue(merchant_id=merchant_id)
    return taken


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def webhook_delivery_process_task(self, *, merchant_id: str, delivery_id: str):
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        return None
    try:
        return webhook_delivery_process(merchant=merchant, delivery_id=delivery_id)
    except (DeliveryRetry, DatabaseError) as exc:
        # The attempt count lives on the inbox row; it turns the delivery `failed` at the limit.
        if self.request.retries >= settings.SHOPIFY_WEBHOOK_MAX_ATTEMPTS * 2:
            logger.warning("webhook %s left for the sweep after %s retries", delivery_id, self.request.retries)
            return None
        # A DeliveryRetry carries the delay it recorded as the row's retry_at.
        countdown = exc.delay if isinstance(exc, DeliveryRetry) else _countdown(self.request.retries)
        raise self.retry(countdown=countdown, exc=exc) from exc


@shared_task(acks_late=True)
def webhook_inbox_sweep_task() -> int:
    """Queue a drain for every shop with deliveries still `received` after the sweep delay (their
    drain was never queued, or was lost). Returns how many deliveries the queued drains cover."""
    stale = webhook_inbox_stale_list(older_than=timedelta(seconds=settings.SHOPIFY_WEBHOOK_SWEEP_AFTER_SECONDS))
    waiting = Counter(merchant_id for merchant_id, _delivery_id in stale)
    return sum(count for merchant_id, count in waiting.items() if inbox_drain_enqueue(merchant_id=merchant_id))


@shared_task(bind=True, acks_late=True, max_retries=3)
def orders_reconcile_task(self, *, merchant_id: str):
    merchant = Merchant.objects.filter(pk=merchant_id, is_installed=True).first()
    if merchant is None:
        return None
    try:
        return orders_reconcile(merchant=merchant)
    except ShopifyAuthError:
        logger.info("reconciliation of %s waits for re-authorisation", merchant_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise self.retry(countdown=_countdown(self.request.retries + 3), exc=exc) from exc


@shared_task(acks_late=True)
def orders_reconcile_all_task() -> int:
    """Beat: one reconciliation task per installed shop."""
    merchant_ids = reconcilable_merchant_ids()
    for merchant_id in merchant_ids:
        orders_reconcile_task.apply_async(kwargs={"merchant_id": merchant_id})
    return len(merchant_ids)
