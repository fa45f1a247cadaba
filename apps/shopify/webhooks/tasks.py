"""Celery tasks of the webhook inbox and reconciliation: ids in, one service call each (E1, B3)."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from apps.core.models import Merchant

from ..graphql import ShopifyAuthError, ShopifyError
from ..queueing import enqueue_unless_broker_down
from .inbox import DeliveryRetry, webhook_delivery_process, webhook_inbox_stale_list
from .reconciliation import orders_reconcile, reconcilable_merchant_ids

logger = logging.getLogger(__name__)


def _countdown(retries: int) -> float:
    """Exponential backoff with full jitter: up to 2, 4, 8… seconds, at most 5 minutes."""
    return random.uniform(1, min(300, 2 ** (retries + 1)))  # noqa: S311  (jitter, not security)


def enqueue_delivery(*, merchant_id: str, delivery_id: str) -> bool:
    """Queue processing now; False when the broker is unreachable (the beat sweep queues it
    later — the delivery is already safe in PostgreSQL, E5)."""
    return enqueue_unless_broker_down(
        webhook_delivery_process_task, kwargs={"merchant_id": merchant_id, "delivery_id": delivery_id}
    )


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
        raise self.retry(countdown=_countdown(self.request.retries), exc=exc) from exc


@shared_task(acks_late=True)
def webhook_inbox_sweep_task() -> int:
    """Queue deliveries still `received` after the sweep delay (their task was never queued)."""
    stale = webhook_inbox_stale_list(older_than=timedelta(seconds=settings.SHOPIFY_WEBHOOK_SWEEP_AFTER_SECONDS))
    queued = 0
    for merchant_id, delivery_id in stale:
        queued += enqueue_delivery(merchant_id=merchant_id, delivery_id=delivery_id)
    return queued


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
