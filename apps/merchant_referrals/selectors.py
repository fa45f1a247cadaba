"""Reads of the merchant referral program."""

from datetime import date, timedelta

from django.db.models import Sum

from .models import MerchantReferral, MerchantReferralDaily, MerchantReferralLink, MerchantReferralReward


def merchant_referral_link_get(*, merchant) -> MerchantReferralLink | None:
    return MerchantReferralLink.objects.filter(merchant=merchant, is_active=True).first()


def merchant_referral_analytics(*, merchant, start: date, end: date) -> dict:
    """Clicks, conversions (attributed installs) and their ratio over [start, end] (UTC days),
    with a daily series for the trend chart. Reads the daily rollup: at most a year of rows."""
    rows = {
        row["day"]: row
        for row in MerchantReferralDaily.objects.filter(merchant=merchant, day__gte=start, day__lte=end).values(
            "day", "clicks", "conversions"
        )
    }
    series = []
    day = start
    while day <= end:
        row = rows.get(day, {})
        series.append(
            {"date": day.isoformat(), "clicks": row.get("clicks", 0), "conversions": row.get("conversions", 0)}
        )
        day += timedelta(days=1)
    clicks = sum(point["clicks"] for point in series)
    conversions = sum(point["conversions"] for point in series)
    return {
        "clicks": clicks,
        "conversions": conversions,
        "ctr": round(conversions / clicks, 4) if clicks else 0.0,
        "series": series,
    }


def merchant_referral_totals(*, merchant) -> dict:
    totals = MerchantReferralDaily.objects.filter(merchant=merchant).aggregate(
        clicks=Sum("clicks"), conversions=Sum("conversions")
    )
    return {"clicks": totals["clicks"] or 0, "conversions": totals["conversions"] or 0}


def merchant_referral_list(*, merchant, limit: int = 100) -> list[dict]:
    """The advocate's referred stores, newest first, with status and reward."""
    referrals = list(
        MerchantReferral.objects.filter(merchant=merchant)
        .select_related("referred_merchant")
        .order_by("-created_at")[:limit]
    )
    rewards = {
        reward.referral_id: reward
        for reward in MerchantReferralReward.objects.filter(
            merchant=merchant, referral_id__in=[r.pk for r in referrals], role="advocate"
        )
    }
    return [{"referral": referral, "reward": rewards.get(referral.pk)} for referral in referrals]
