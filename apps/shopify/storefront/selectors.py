"""Reads behind the storefront endpoints. Callers are inside the merchant's scope."""

from apps.core.models import PointsTransaction, ProgramSettings, Reward, VipTier, localized
from apps.core.streams import stream_latest

LATEST_TRANSACTIONS = 5


def _tier(tier: VipTier | None, locale: str) -> dict | None:
    if tier is None:
        return None
    return {"id": tier.pk, "name": localized(tier.name, locale), "min_lifetime_points": tier.min_lifetime_points}


def _latest_change_from_database(*, merchant, customer) -> dict | None:
    entry = (
        PointsTransaction.objects.filter(merchant=merchant, customer=customer)
        .order_by("-created_at", "-id")
        .values("id", "balance_after")
        .first()
    )
    if entry is None:
        return None
    return {"transaction_id": entry["id"], "points_balance": entry["balance_after"]}


def shopper_points_get(*, merchant, customer, locale: str) -> dict:
    """Return the shopper's balance, tier, next tier and latest ledger entries.

    The newest change comes from the Redis stream `points:{customer_id}`, or from PostgreSQL
    when Redis is down or the stream is empty or behind the customer row (a change committed
    while Redis was down never reached the stream).
    """
    latest = stream_latest(
        merchant_id=merchant.pk,
        key=f"points:{customer.pk}",
        fallback=lambda: _latest_change_from_database(merchant=merchant, customer=customer),
    )
    if latest is not None and latest.get("points_balance") != customer.points_balance:
        latest = _latest_change_from_database(merchant=merchant, customer=customer)
    next_tier = (
        VipTier.objects.filter(merchant=merchant, min_lifetime_points__gt=customer.lifetime_points)
        .order_by("min_lifetime_points")
        .first()
    )
    entries = (
        PointsTransaction.objects.filter(merchant=merchant, customer=customer)
        .order_by("-created_at", "-id")
        .values("id", "kind", "points", "balance_after", "reward_id", "created_at")[:LATEST_TRANSACTIONS]
    )
    return {
        "points_balance": customer.points_balance,
        "lifetime_points": customer.lifetime_points,
        "vip_tier": _tier(customer.vip_tier, locale),
        "next_tier": (
            {**_tier(next_tier, locale), "points_needed": next_tier.min_lifetime_points - customer.lifetime_points}
            if next_tier is not None
            else None
        ),
        "last_transaction_id": latest["transaction_id"] if latest else None,
        "transactions": list(entries),
    }


def shopper_reward_list(*, merchant, customer, locale: str) -> list[dict]:
    """Return the active rewards, cheapest first; `can_afford` is None for anonymous visitors."""
    rewards = Reward.objects.filter(merchant=merchant, is_active=True).order_by("points_cost", "id")
    balance = customer.points_balance if customer is not None else None
    return [
        {
            "id": reward.pk,
            "name": localized(reward.name, locale),
            "kind": reward.kind,
            "points_cost": reward.points_cost,
            "value": str(reward.value),
            "can_afford": None if balance is None else balance >= reward.points_cost,
        }
        for reward in rewards
    ]


def referral_offer_get(*, merchant) -> dict:
    """Return what the shop's referral programme gives the friend and the advocate."""
    program = ProgramSettings.objects.filter(merchant=merchant).first()
    return {
        "friend_points": program.referral_friend_points if program else 0,
        "advocate_points": program.referral_advocate_points if program else 0,
    }
