"""Celery tasks of the merchant referral program: thin, ids in, one service call."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from apps.core.models import Merchant
from apps.core.tenancy import scopes_disabled
from apps.shopify.graphql import ShopifyAuthError, ShopifyError

from . import rewards, services
from .models import MerchantReferralReward, RewardStatus
from .shopify_api import referral_metafield_write, shop_owner_refresh

logger = logging.getLogger(__name__)

REQUEUE_PENDING_AFTER = timedelta(minutes=15)


def _backoff(retries: int) -> float:
    return min(600, 10 * 2**retries) * random.uniform(0.5, 1.0)  # noqa: S311  (jitter)


def _merchant(merchant_id: str) -> Merchant | None:
    return Merchant.objects.filter(pk=merchant_id, is_installed=True).first()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def merchant_referrals_advance_task() -> dict:
    """Beat: complete or expire pending referrals; re-queue rewards still waiting to be applied."""
    report = services.merchant_referrals_advance()
    with scopes_disabled():
        waiting = list(
            MerchantReferralReward.objects.filter(
                status=RewardStatus.PENDING, created_at__lte=timezone.now() - REQUEUE_PENDING_AFTER
            ).values_list("merchant_id", "pk")[:1000]
        )
    for merchant_id, reward_id in waiting:
        merchant_referral_reward_apply_task.delay(merchant_id=merchant_id, reward_id=reward_id)
    report["rewards_requeued"] = len(waiting)
    return report


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def merchant_referral_reward_apply_task(self, *, merchant_id: str, reward_id: str) -> str | None:
    try:
        reward = rewards.merchant_referral_reward_apply(merchant_id=merchant_id, reward_id=reward_id)
    except ShopifyAuthError:
        logger.warning("referral reward %s not applied: the shop must re-authorise", reward_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable or self.request.retries >= self.max_retries:
            return None  # left pending: the beat re-queues it later
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
    return reward.status if reward is not None else None


@shared_task(bind=True, acks_late=True, max_retries=5)
def merchant_referral_metafield_task(self, *, merchant_id: str) -> str | None:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    try:
        return referral_metafield_write(merchant=merchant)
    except ShopifyAuthError:
        logger.warning("merchant_referral metafield of %s not written: the shop must re-authorise", merchant_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


@shared_task(acks_late=True)
def shop_owner_refresh_task(*, merchant_id: str) -> bool:
    merchant = _merchant(merchant_id)
    return merchant is not None and shop_owner_refresh(merchant=merchant) is not None
