"""Reads behind the embedded admin pages. Each selector enters the merchant's scope itself."""

from dataclasses import dataclass

from django.db.models import Count, Sum
from django.db.models.functions import Coalesce

from apps.core.models import Customer, Merchant, PointsTransaction, StaffMember, VipTier, localized
from apps.core.tenancy import merchant_scope


@dataclass(frozen=True)
class TierCount:
    tier_id: str | None  # None: customers below the first tier
    name: str
    min_lifetime_points: int | None
    customer_count: int


def merchant_get_installed(*, shop_domain: str) -> Merchant | None:
    """Return the installed merchant of a verified shop domain (Merchant is the tenant, not scoped)."""
    return Merchant.objects.filter(shop_domain=shop_domain, is_installed=True).first()


def staff_member_is_blocked(*, merchant, shopify_user_id: str) -> bool:
    """Return True when the merchant deactivated this staff member in LoyalNest."""
    with merchant_scope(merchant):
        return StaffMember.objects.filter(merchant=merchant, shopify_user_id=shopify_user_id, is_active=False).exists()


def customer_totals(*, merchant) -> dict:
    """Return the number of customers and the points they hold (the sum of cached balances)."""
    with merchant_scope(merchant):
        return Customer.objects.filter(merchant=merchant).aggregate(
            customer_count=Count("id"), points_outstanding=Coalesce(Sum("points_balance"), 0)
        )


def vip_tier_customer_counts(*, merchant, locale: str) -> list[TierCount]:
    """Return customers per VIP tier, lowest tier first, after those who reached no tier yet."""
    with merchant_scope(merchant):
        tiers = list(
            VipTier.objects.filter(merchant=merchant)
            .annotate(customer_count=Count("customers"))
            .order_by("min_lifetime_points")
        )
        untiered = Customer.objects.filter(merchant=merchant, vip_tier__isnull=True).count()
    rows = [TierCount(tier_id=None, name="", min_lifetime_points=None, customer_count=untiered)]
    rows += [
        TierCount(
            tier_id=tier.pk,
            name=localized(tier.name, locale),
            min_lifetime_points=tier.min_lifetime_points,
            customer_count=tier.customer_count,
        )
        for tier in tiers
    ]
    return rows


def points_transaction_latest_list(*, merchant, limit: int = 10) -> list[PointsTransaction]:
    """Return the newest ledger entries of the shop, newest first."""
    # By created_at, not by the ULID id alone: imported or seeded history carries its own dates.
    with merchant_scope(merchant):
        return list(
            PointsTransaction.objects.filter(merchant=merchant)
            .select_related("customer")
            .order_by("-created_at", "-id")[:limit]
        )
