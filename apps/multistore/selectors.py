"""Reads of the multi-store feature: the group overview, sync accuracy and lag, the shared
leaderboard (a Redis sorted set per group and cycle, rebuilt from PostgreSQL when missing)."""

import logging

import redis
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from apps.core.models import Customer
from apps.core.redis import get_redis
from apps.core.tenancy import scopes_disabled

from .models import LinkReview, ReviewStatus, SharedEntryKind, SharedLedgerEntry, StoreGroupInvite, StoreGroupMember

logger = logging.getLogger(__name__)

LAG_WINDOW_HOURS = 24


def group_member_list(*, group) -> list[StoreGroupMember]:
    return list(
        StoreGroupMember.across_stores.filter(group=group).select_related("merchant").order_by("joined_at", "id")
    )


def group_store_ids(merchant) -> list[str]:
    """The merchant ids of the stores in this merchant's group (itself included), by id; just
    this merchant outside a group. The truth `multi_store_config.shared_stores` mirrors."""
    merchant_id = getattr(merchant, "pk", merchant)
    group_id = StoreGroupMember.across_stores.filter(merchant_id=merchant_id).values_list("group_id", flat=True).first()
    if group_id is None:
        return [merchant_id]
    return sorted(StoreGroupMember.across_stores.filter(group_id=group_id).values_list("merchant_id", flat=True))


def sync_accuracy(*, merchant_id: str) -> dict:
    """Share of this store's linked customers whose Shopify copies (balance and shared id, as we
    last confirmed them) equal the ledger."""
    sql = """
        SELECT count(*),
               count(*) FILTER (WHERE cb.value = u.points_balance::text AND cs.value = u.shared_customer_id)
        FROM users u
        LEFT JOIN shopify_metafield_copies cb ON cb.customer_id = u.id AND cb.key = 'points_balance'
        LEFT JOIN shopify_metafield_copies cs ON cs.customer_id = u.id AND cs.key = 'shared_customer_id'
        WHERE u.merchant_id = %s AND u.shared_customer_id IS NOT NULL AND u.redacted_at IS NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant_id])
        total, equal = cursor.fetchone()
    return {"copies": total, "equal": equal, "accuracy": (equal / total) if total else None}


def sync_lag(*, merchant_id: str) -> dict:
    """Lag p50 / p99 (ms) from a shared balance change to the copy confirmed, last 24 hours."""
    since = timezone.now() - timezone.timedelta(hours=LAG_WINDOW_HOURS)
    sql = """
        SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms)
        FROM multistore_sync_lag WHERE merchant_id = %s AND created_at >= %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant_id, since])
        samples, p50, p99 = cursor.fetchone()
    return {
        "samples": samples,
        "p50_ms": round(p50) if p50 is not None else None,
        "p99_ms": round(p99) if p99 else None,
    }


def link_review_list(*, group, status: str = ReviewStatus.PENDING) -> list[LinkReview]:
    return list(LinkReview.objects.filter(group=group, status=status).prefetch_related("customers__merchant"))


def group_overview(*, merchant) -> dict | None:
    """What the merchant page and GET /v1/api/multi-store/group show; None outside a group."""
    member = StoreGroupMember.across_stores.select_related("group").filter(merchant=merchant).first()
    if member is None:
        return None
    group = member.group
    stores = []
    for row in group_member_list(group=group):
        with scopes_disabled():
            linked = Customer.objects.filter(merchant=row.merchant, shared_customer_id__isnull=False).count()
        stores.append(
            {
                "store_id": row.merchant.pk,
                "shop_domain": row.merchant.shop_domain,
                "role": row.role,
                "joined_at": row.joined_at.isoformat(),
                "linked_customers": linked,
                **sync_accuracy(merchant_id=row.merchant.pk),
                "lag": sync_lag(merchant_id=row.merchant.pk),
            }
        )
    invites = StoreGroupInvite.objects.filter(
        group=group, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    with scopes_disabled():
        reviews = link_review_list(group=group)
        for review in reviews:
            list(review.customers.all())
    return {
        "group_id": group.pk,
        "name": group.name,
        "sharing": group.sharing,
        "stores": stores,
        "pending_invites": [
            {"invite_id": i.pk, "shop_domain": i.shop_domain, "expires_at": i.expires_at.isoformat()} for i in invites
        ],
        "reviews": [
            {
                "review_id": review.pk,
                "reason": review.reason,
                "customers": [{"customer_id": c.pk, "store_id": c.merchant_id} for c in review.customers.all()],
            }
            for review in reviews
        ],
    }


# --- shared leaderboard -------------------------------------------------------------------------


def current_cycle() -> str:
    return timezone.now().strftime("%Y-%m")


def leaderboard_key(group_id: str, cycle: str) -> str:
    return f"multistore:leaderboard:{group_id}:{cycle}"


def _cycle_scores(group_id: str, cycle: str) -> dict[str, int]:
    year, month = (int(part) for part in cycle.split("-"))
    rows = (
        SharedLedgerEntry.objects.filter(
            account__group_id=group_id,
            kind=SharedEntryKind.STORE,
            points__gt=0,
            created_at__year=year,
            created_at__month=month,
        )
        .values("account_id")
        .annotate(score=Sum("points"), n=Count("id"))
    )
    return {row["account_id"]: row["score"] for row in rows}


def shared_leaderboard_get(*, group, cycle: str | None = None, limit: int = 10) -> list[dict]:
    """GetSharedLeaderboard: the group's top shared customers of a cycle by points earned in any
    store. Redis is a cache: an empty or unreachable Redis falls back to (and refills from) SQL."""
    cycle = cycle or current_cycle()
    key = leaderboard_key(group.pk, cycle)
    try:
        client = get_redis()
        if not client.exists(key):
            scores = _cycle_scores(group.pk, cycle)
            if scores:
                client.zadd(key, scores)
                client.expire(key, 90 * 24 * 3600)
        ranked = client.zrevrange(key, 0, limit - 1, withscores=True)
        return [
            {"shared_customer_id": member.decode() if isinstance(member, bytes) else member, "score": int(score)}
            for member, score in ranked
        ]
    except redis.RedisError:
        logger.warning("shared leaderboard: Redis unavailable, reading PostgreSQL")
        scores = _cycle_scores(group.pk, cycle)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [{"shared_customer_id": account, "score": score} for account, score in ranked]
