"""Rewards of completed referrals, applied as Shopify app credits exactly once.

A reward row is unique per (referral, role), created in the completing transaction. Applying it:
1. claim — lock the row; only a `pending` row moves on, to `applying` (committed);
2. call `appCreditCreate` (the description names the reward row, for reconciliation);
3. record — `applied` with Shopify's credit id, audit, notify the advocate.
If Shopify said it did nothing (429, 5xx, THROTTLED) the row goes back to `pending` for the
task's retry; a refusal (userErrors) ends `failed`; a lost answer (timeout after sending) leaves
it `applying` — never resent automatically, staff check Shopify and decide in admin. So a task
retried, redelivered or run twice at once never credits a shop twice.
"""

import logging

from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.tenancy import merchant_scope, scopes_disabled
from apps.shopify.graphql import ShopifyError

from .catalogue import advocate_reward, welcome_reward
from .models import MerchantReferralReward, RewardRole, RewardStatus

logger = logging.getLogger(__name__)


def merchant_referral_rewards_grant(*, referral, actor=None, roles=None) -> list[MerchantReferralReward]:
    """Create the reward rows of a referral (advocate's, and the welcome reward if configured),
    once; queue their application after commit. Runs in the caller's transaction."""
    planned = [(RewardRole.ADVOCATE, referral.merchant, (referral.reward_id, advocate_reward()[1]))]
    welcome = welcome_reward()
    if welcome is not None:
        planned.append((RewardRole.REFERRED, referral.referred_merchant, welcome))
    from django.conf import settings

    granted = []
    for role, recipient, (reward_id, amount) in planned:
        if roles is not None and role not in roles:
            continue
        with merchant_scope(recipient):
            reward, created = MerchantReferralReward.objects.get_or_create(
                referral=referral,
                role=role,
                defaults={
                    "merchant": recipient,
                    "reward_id": reward_id,
                    "amount": amount,
                    "currency": settings.MERCHANT_REFERRALS_REWARD_CURRENCY,
                },
            )
            if created:
                audit_record(
                    merchant=recipient,
                    actor=actor,
                    action="merchant_referral_reward_granted",
                    target=reward,
                    metadata={"merchant_referral_id": referral.pk, "reward": reward_id, "role": role},
                )
                _queue_apply(reward)
        granted.append(reward)
    return granted


def _queue_apply(reward) -> None:
    from .tasks import merchant_referral_reward_apply_task

    # A dead broker never fails the caller: the reward waits `pending` and the hourly advance
    # task re-queues it.
    transaction.on_commit(
        lambda: enqueue_unless_broker_down(
            merchant_referral_reward_apply_task, kwargs={"merchant_id": reward.merchant_id, "reward_id": reward.pk}
        )
    )


def _claim(reward_id: str, merchant_id: str) -> MerchantReferralReward | None:
    with transaction.atomic(), merchant_scope(merchant_id):
        reward = (
            MerchantReferralReward.objects.select_for_update()
            .select_related("merchant")
            .filter(pk=reward_id, merchant_id=merchant_id)
            .first()
        )
        if reward is None or reward.status != RewardStatus.PENDING:
            return None
        reward.status = RewardStatus.APPLYING
        reward.attempts += 1
        reward.save(update_fields=["status", "attempts"])
    return reward


def _settle(reward, *, status: str, credit_id: str = "", error: str = "") -> MerchantReferralReward:
    from .services import _after_change

    with transaction.atomic(), merchant_scope(reward.merchant_id):
        reward = MerchantReferralReward.objects.select_for_update().get(pk=reward.pk, merchant_id=reward.merchant_id)
        reward.status = status
        reward.last_error = error[:500]
        fields = ["status", "last_error"]
        if status == RewardStatus.APPLIED:
            reward.shopify_credit_id = credit_id[:128]
            reward.applied_at = timezone.now()
            fields += ["shopify_credit_id", "applied_at"]
            audit_record(
                merchant=reward.merchant,
                action="merchant_referral_reward_applied",
                target=reward,
                metadata={"merchant_referral_id": reward.referral_id, "reward": reward.reward_id, "role": reward.role},
            )
        elif status == RewardStatus.FAILED:
            audit_record(
                merchant=reward.merchant,
                action="merchant_referral_reward_failed",
                target=reward,
                metadata={"merchant_referral_id": reward.referral_id, "error": error[:200]},
            )
        reward.save(update_fields=fields)
    if status == RewardStatus.APPLIED and reward.role == RewardRole.ADVOCATE:
        with scopes_disabled():
            referral = reward.referral
        with transaction.atomic(), merchant_scope(referral.merchant_id):
            _after_change(referral, event="reward_applied")
    return reward


def merchant_referral_reward_apply(*, merchant_id: str, reward_id: str, credit=None) -> MerchantReferralReward | None:
    """Apply one reward as a Shopify app credit (see the module docstring). Returns the row after
    this attempt, None when there was nothing to do. Raises ShopifyError when a retry can help."""
    from .shopify_api import BillingNotConfigured, CreditOutcomeUnknown, app_credit_create

    credit = credit or app_credit_create
    reward = _claim(reward_id, merchant_id)
    if reward is None:
        return None
    description = f"LoyalNest referral reward {reward.reward_id} ({reward.pk})"
    try:
        credit_id = credit(
            merchant=reward.merchant, amount=reward.amount, currency=reward.currency, description=description
        )
    except CreditOutcomeUnknown as exc:
        _settle(reward, status=RewardStatus.APPLYING, error=f"outcome unknown: {exc.detail}")
        logger.warning("app credit of reward %s: outcome unknown, left for staff", reward.pk)
        return reward
    except BillingNotConfigured as exc:
        return _settle(reward, status=RewardStatus.PENDING, error=exc.detail)
    except ShopifyError as exc:
        if exc.retryable:
            _settle(reward, status=RewardStatus.PENDING, error=exc.detail)
            raise
        return _settle(reward, status=RewardStatus.FAILED, error=exc.detail or exc.code)
    return _settle(reward, status=RewardStatus.APPLIED, credit_id=credit_id)


@transaction.atomic
def merchant_referral_reward_retry(*, reward, actor) -> MerchantReferralReward:
    """Staff: put a failed (or, after checking Shopify, an `applying`) reward back to pending."""
    with merchant_scope(reward.merchant_id):
        reward = MerchantReferralReward.objects.select_for_update().get(pk=reward.pk, merchant_id=reward.merchant_id)
        if reward.status in (RewardStatus.APPLIED, RewardStatus.PENDING):
            return reward
        previous = reward.status
        reward.status = RewardStatus.PENDING
        reward.save(update_fields=["status"])
        audit_record(
            merchant=reward.merchant,
            actor=actor,
            action="merchant_referral_reward_retried",
            target=reward,
            metadata={"previous": previous, "previous_error": reward.last_error},
        )
        _queue_apply(reward)
    return reward
