"""Reads of reward redemptions: always one merchant's, a shopper's own only."""

from apps.core.tenancy import merchant_scope

from ..models import RewardRedemption

MAX_LISTED = 100


def reward_redemption_get(*, merchant, redemption_id: str) -> RewardRedemption | None:
    with merchant_scope(merchant):
        return (
            RewardRedemption.objects.select_related("reward", "customer", "transaction")
            .filter(merchant=merchant, pk=redemption_id)
            .first()
        )


def reward_redemption_list(*, merchant, customer) -> list[RewardRedemption]:
    """The customer's redemptions, newest first (at most MAX_LISTED)."""
    with merchant_scope(merchant):
        return list(
            RewardRedemption.objects.select_related("reward", "transaction")
            .filter(merchant=merchant, customer=customer)
            .order_by("-created_at", "-id")[:MAX_LISTED]
        )
