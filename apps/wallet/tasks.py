"""Celery tasks of the wallet feature: thin, ids in, one service call."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope, scopes_disabled

from . import services
from .models import PushStatus, WalletPass

logger = logging.getLogger(__name__)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with full jitter: up to base·2^attempt seconds."""
    return random.uniform(0, settings.WALLET_PUSH_RETRY_BASE_SECONDS * (2**attempt))  # noqa: S311


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def wallet_passes_push_task(self, *, merchant_id: str, pass_ids: list[str], attempt: int = 0) -> dict:
    """Push the passes' updates; retry what can be retried, at most WALLET_PUSH_MAX_RETRIES times."""
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        return {"pushed": 0, "retry": 0}
    with merchant_scope(merchant):
        retry = services.wallet_passes_push(merchant=merchant, pass_ids=pass_ids)
        if retry and attempt >= settings.WALLET_PUSH_MAX_RETRIES:
            services.wallet_passes_give_up(merchant=merchant, pass_ids=retry)
            logger.warning("wallet pushes gave up after %s retries: %s passes failed", attempt, len(retry))
            return {"pushed": len(pass_ids) - len(retry), "failed": len(retry)}
    if retry:
        wallet_passes_push_task.apply_async(
            kwargs={"merchant_id": merchant_id, "pass_ids": retry, "attempt": attempt + 1},
            countdown=retry_delay(attempt),
        )
    return {"pushed": len(pass_ids) - len(retry), "retry": len(retry)}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def wallet_passes_sweep_task() -> int:
    """Queue pushes for passes left pending (broker down when they changed, worker lost)."""
    stale = timezone.now() - timedelta(minutes=10)
    with scopes_disabled():
        rows = list(
            WalletPass.objects.filter(
                push_status=PushStatus.PENDING, updated_at__lt=stale, push_attempts=0
            ).values_list("merchant_id", "pk")[:5000]
        )
    by_merchant: dict[str, list[str]] = {}
    for merchant_id, pass_id in rows:
        by_merchant.setdefault(merchant_id, []).append(pass_id)
    for merchant_id, pass_ids in by_merchant.items():
        wallet_passes_push_task.delay(merchant_id=merchant_id, pass_ids=pass_ids)
    return len(rows)
