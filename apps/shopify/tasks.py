"""Celery tasks of reward redemptions: thin, ids in, one service call (E1, E2, E3)."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.core.models import Merchant
from apps.core.tenancy import scopes_disabled

from .models import RedemptionStatus, RewardRedemption
from .rewards.services import RedemptionIssueRetry, reward_redemption_enqueue, reward_redemption_issue

logger = logging.getLogger(__name__)


def _countdown(retries: int) -> float:
    """Exponential backoff with full jitter: up to 2, 4, 8… seconds, at most 2 minutes."""
    return random.uniform(1, min(120, 2 ** (retries + 1)))  # noqa: S311  (jitter, not security)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=20)
def reward_redemption_issue_task(self, *, merchant_id: str, redemption_id: str) -> str | None:
    # The attempt count lives on the row: it turns the redemption `failed` at the limit, so
    # Celery's own retry limit is only a backstop.
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        return None
    try:
        return reward_redemption_issue(merchant=merchant, redemption_id=redemption_id).status
    except RedemptionIssueRetry as exc:
        raise self.retry(countdown=_countdown(self.request.retries), exc=exc) from exc


@shared_task(acks_late=True)
def reward_redemption_sweep_task() -> int:
    """Beat: queue redemptions left `pending` and untouched (their task was lost or never queued)."""
    cutoff = timezone.now() - timedelta(seconds=settings.REWARD_REDEMPTION_SWEEP_AFTER_SECONDS)
    with scopes_disabled():
        stale = list(
            RewardRedemption.objects.filter(status=RedemptionStatus.PENDING, updated_at__lt=cutoff)
            .order_by("updated_at")
            .values_list("merchant_id", "id")[:500]
        )
    queued = 0
    for merchant_id, redemption_id in stale:
        queued += reward_redemption_enqueue(merchant_id=merchant_id, redemption_id=redemption_id)
    return queued
