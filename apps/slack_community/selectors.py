"""Reads of LoyalNest Collective: a merchant's members and beta flags, and community analytics.

`beta_feature_enabled` is the one function other feature apps call to gate their beta code.
"""

from django.db.models import Count, Q

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope, scopes_disabled

from .catalogue import BETA_FEATURES
from .models import MemberStatus, SlackCommunityMember
from .storefront_flags import storefront_flags


def beta_feature_enabled(merchant, key: str) -> bool:
    """Whether the merchant switched on the beta feature `key` (False for unknown keys)."""
    if key not in BETA_FEATURES or merchant is None:
        return False
    with merchant_scope(merchant):
        return SlackCommunityMember.objects.filter(merchant=merchant, **{f"beta_features__{key}": True}).exists()


def beta_feature_enabled_in_request(merchant, key: str) -> bool:
    """`beta_feature_enabled` for storefront requests: every flag of the merchant read in one
    query, then kept a few seconds per process (`apps.core.local_cache`)."""
    if key not in BETA_FEATURES or merchant is None:
        return False
    flags = storefront_flags.get(merchant.pk)
    if flags is None:
        with merchant_scope(merchant):
            rows = SlackCommunityMember.objects.filter(merchant=merchant).values_list("beta_features", flat=True)
            flags = frozenset(name for row in rows for name, value in (row or {}).items() if value is True)
        storefront_flags.put(merchant.pk, flags)
    return key in flags


def beta_features_get(*, merchant) -> dict:
    """The merchant's flags ({} before joining), as stored on its community rows."""
    with merchant_scope(merchant):
        flags = (
            SlackCommunityMember.objects.filter(merchant=merchant)
            .order_by("pk")
            .values_list("beta_features", flat=True)
        ).first()
    return {key: True for key, value in (flags or {}).items() if value is True and key in BETA_FEATURES}


def slack_community_member_list(*, merchant) -> list[SlackCommunityMember]:
    with merchant_scope(merchant):
        return list(SlackCommunityMember.objects.filter(merchant=merchant).order_by("-created_at"))


def slack_community_analytics() -> dict:
    """Community-wide figures (staff admin, merchant page): participation = installed merchants
    with an active member / installed merchants (goal 80%); beta adoption = community merchants
    with at least one beta feature on / community merchants (goal 10%), and per feature."""
    with scopes_disabled():
        installed = Merchant.objects.filter(is_installed=True).count()
        rows = SlackCommunityMember.objects.filter(merchant__is_installed=True)
        per_merchant = rows.values("merchant_id").annotate(
            active=Count("pk", filter=Q(status=MemberStatus.ACTIVE)),
        )
        community = list(per_merchant)
        active_merchants = sum(1 for row in community if row["active"])
        flags_by_merchant = {}
        for merchant_id, flags in rows.order_by("merchant_id", "pk").values_list("merchant_id", "beta_features"):
            flags_by_merchant.setdefault(merchant_id, flags or {})
    members = len(community)
    adopters = sum(1 for flags in flags_by_merchant.values() if any(v is True for v in flags.values()))
    by_feature = {
        key: sum(1 for flags in flags_by_merchant.values() if flags.get(key) is True) for key in BETA_FEATURES
    }
    return {
        "installed_merchants": installed,
        "community_merchants": members,
        "active_merchants": active_merchants,
        "participation_rate": round(active_merchants / installed, 4) if installed else 0.0,
        "beta_adopters": adopters,
        "beta_adoption_rate": round(adopters / members, 4) if members else 0.0,
        "beta_adoption_by_feature": by_feature,
        "status_counts": _status_counts(),
    }


def _status_counts() -> dict:
    with scopes_disabled():
        counts = dict(SlackCommunityMember.objects.values("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in MemberStatus.values}
