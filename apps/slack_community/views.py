"""The merchant's LoyalNest Collective page of the embedded admin, mounted at /app/community/."""

from django.conf import settings
from django.shortcuts import render

from apps.core.tenancy import merchant_scope
from apps.shopify.views import _base_context, _carried_query, _denied, embedded_page, feature_navigation

from . import selectors
from .catalogue import BETA_FEATURES

PAGE_SCOPE = "admin:community"


def _percent(rate: float) -> float:
    return round(rate * 100, 1)


@embedded_page
def community_page(request, session):
    """Join (with help finding one's Slack member ID), members and their status, beta switches,
    and the community's participation and beta adoption."""
    merchant = session.merchant
    with merchant_scope(merchant):
        if not session.has_scope(PAGE_SCOPE):
            return _denied(request, 403, session.locale)
        flags = selectors.beta_features_get(merchant=merchant)
        members = selectors.slack_community_member_list(merchant=merchant)
    analytics = selectors.slack_community_analytics()
    context = {
        **_base_context(session.locale),
        "merchant": merchant,
        "features": feature_navigation(),
        "query": _carried_query(request),
        "members": members,
        "is_member": bool(members),
        "beta_features": [
            {"key": key, "label": feature.label, "description": feature.description, "enabled": bool(flags.get(key))}
            for key, feature in BETA_FEATURES.items()
        ],
        "analytics": analytics,
        "participation_percent": _percent(analytics["participation_rate"]),
        "adoption_percent": _percent(analytics["beta_adoption_rate"]),
        "workspace_url": settings.SLACK_COMMUNITY_WORKSPACE_URL,
    }
    return render(request, "slack_community/page.html", context)
