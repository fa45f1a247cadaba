"""Set-based upkeep jobs of the core (run from Celery)."""

from datetime import timedelta

from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.models import Customer, IdempotencyRecord, VipTier
from apps.core.tenancy import scopes_disabled


@transaction.atomic
def vip_tiers_recalculate(*, merchant) -> int:
    """Put every customer of the merchant in the tier their lifetime points reach.

    Runs as one UPDATE over the rows whose tier is wrong, so it stays fast at 100,000+
    customers; returns how many customers changed tier.
    """
    best_tier = Subquery(
        VipTier.objects.filter(merchant=merchant, min_lifetime_points__lte=OuterRef("lifetime_points"))
        .order_by("-min_lifetime_points")
        .values("pk")[:1]
    )
    wrong = (
        Customer.objects.filter(merchant=merchant)
        .alias(target=best_tier)
        .filter(
            Q(vip_tier__isnull=True, target__isnull=False)
            | Q(vip_tier__isnull=False, target__isnull=True)
            | (Q(vip_tier__isnull=False, target__isnull=False) & ~Q(vip_tier=F("target")))
        )
    )
    changed = wrong.update(vip_tier_id=best_tier, updated_at=timezone.now())
    audit_record(merchant=merchant, action="vip_tiers_recalculated", metadata={"customers_changed": changed})
    return changed


def idempotency_records_purge(*, older_than: timedelta) -> int:
    """Forget stored Idempotency-Key answers past their retention."""
    with scopes_disabled():
        deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
