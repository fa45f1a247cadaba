"""The gamification page of the embedded admin: badge editor (22 locale names, preview, RTL for
ar/he/fa), streak settings, teams and cycles, the team leaderboard. Server-rendered; saving
goes through the API with the session token; charts are an enhancement over tables."""

import re

from django.shortcuts import render

from apps.core.locales import LOCALES, is_rtl
from apps.core.tenancy import merchant_scope
from apps.shopify.views import _base_context, _carried_query, _denied, embedded_page, feature_navigation

from . import rules, selectors
from .models import CYCLE_REGEX, ActionType, StreakPeriod

SCOPE = "admin:gamification"
RULE_CHOICES = [
    ("seasonal", "seasonal"),
    ("streak", "streak"),
    ("total_spend", "total_spend"),
    ("order_count", "order_count"),
    ("first_purchase", "first_purchase"),
    ("referrals", "referrals"),
]


@embedded_page
def gamification_page(request, session):
    merchant = session.merchant
    if not session.has_scope(SCOPE):
        return _denied(request, 403, session.locale)
    locale = session.locale
    with merchant_scope(merchant):
        cycle = request.GET.get("cycle") or ""
        if not re.match(CYCLE_REGEX, cycle):
            cycle = selectors.current_cycle(merchant=merchant)
        ranking = selectors.team_ranking(merchant=merchant, cycle=cycle, limit=20, locale=locale)
        settings = selectors.gamification_settings_get(merchant)
        badges = selectors.badge_list(merchant=merchant, locale=locale)
        streak_chart = selectors.streak_distribution_chart(merchant=merchant)
        context = {
            **_base_context(locale),
            "merchant": merchant,
            "features": feature_navigation(),
            "query": _carried_query(request),
            "badges": badges,
            "locales": [{"code": code, "rtl": is_rtl(code)} for code in LOCALES],
            "rule_choices": RULE_CHOICES,
            "settings": settings,
            "periods": StreakPeriod.choices,
            "actions": ActionType.choices,
            "cycle": cycle,
            "teams": selectors.team_list(merchant=merchant, cycle=cycle, locale=locale),
            "ranking": ranking,
            "ranking_chart": selectors.team_ranking_chart(ranking),
            "streak_chart": streak_chart,
            "streak_rows": list(
                zip(streak_chart["data"]["labels"], streak_chart["data"]["datasets"][0]["data"], strict=True)
            ),
            "example_name": rules.badge_name({"en": "Seasonal Star"}, locale),
        }
    return render(request, "gamification/page.html", context)
