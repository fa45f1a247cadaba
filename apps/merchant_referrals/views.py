"""`/r/<code>` (the public referral link) and the merchant page `/app/merchant-referrals/`."""

import logging
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

import redis
from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.tenancy import merchant_scope
from apps.shopify.ratelimit import Counter, Rate, client_fingerprint, rate_limit_hit
from apps.shopify.views import _base_context, _carried_query, _denied, embedded_page, feature_navigation

from . import selectors, services
from .catalogue import referral_url, reward_label

logger = logging.getLogger(__name__)

COOKIE_NAME = "loyalnest_mref"
URL_PARAMETER = "mref"
RATE_BUCKET_OWNER = "merchant-referrals"  # rate-limit keys are not per shop here: codes are global


def _client_address(request) -> str:
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR", "") or "unknown"


def listing_url(token: str | None = None) -> str:
    """The app listing, carrying the signed code so it survives the install."""
    if not token:
        return settings.MERCHANT_REFERRALS_LISTING_URL
    parts = urlsplit(settings.MERCHANT_REFERRALS_LISTING_URL)
    query = "&".join(filter(None, [parts.query, urlencode({URL_PARAMETER: token})]))
    return urlunsplit(parts._replace(query=query))


def _rate_limited(request) -> float | None:
    counter = Counter(
        bucket="redirect",
        who=client_fingerprint(_client_address(request)),
        rate=Rate.parse(settings.MERCHANT_REFERRALS_REDIRECT_RATE),
    )
    try:
        return rate_limit_hit(merchant_id=RATE_BUCKET_OWNER, counters=[counter])
    except redis.RedisError:
        return None  # a lookup is a read: fail open (RELIABILITY D3)


@never_cache
@require_GET
def referral_redirect(request, code: str):
    """Count the click, keep the code (cookie + listing URL parameter), go to the listing."""
    wait = _rate_limited(request)
    if wait is not None:
        response = HttpResponse(_("Too many requests. Try again in a moment."), status=429)
        response["Retry-After"] = str(max(1, int(wait + 0.999)))
        return response
    link = services.link_get_by_code(code)
    if link is None:
        return HttpResponseRedirect(listing_url())
    services.merchant_referral_click_record(
        link=link, address=_client_address(request), user_agent=request.META.get("HTTP_USER_AGENT", "")
    )
    token = services.referral_token(link.code)
    response = HttpResponseRedirect(listing_url(token))
    # SameSite=None: the embedded app reads it later inside the Shopify admin's iframe.
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(timedelta(days=settings.MERCHANT_REFERRALS_ATTRIBUTION_DAYS).total_seconds()),
        secure=request.is_secure() or not settings.DEBUG,
        httponly=True,
        samesite="None" if (request.is_secure() or not settings.DEBUG) else "Lax",
    )
    return response


@embedded_page
def merchant_referrals_page(request, session):
    """The advocate's link (copy button), the 30-day trend and the referred stores."""
    merchant = session.merchant
    if not (session.has_scope("admin:referrals") or session.has_scope("admin:analytics")):
        return _denied(request, 403, session.locale)
    today = timezone.now().date()
    with merchant_scope(merchant):
        link = selectors.merchant_referral_link_get(merchant=merchant)
        analytics = (
            selectors.merchant_referral_analytics(merchant=merchant, start=today - timedelta(days=29), end=today)
            if session.has_scope("admin:analytics")
            else None
        )
        referrals = selectors.merchant_referral_list(merchant=merchant)
    rows = [
        {
            "shop": item["referral"].referred_merchant.shop_domain,
            "status": item["referral"].get_status_display(),
            "status_key": item["referral"].status,
            "created_at": item["referral"].created_at,
            "reward": reward_label(item["referral"].reward_id),
            "reward_status": item["reward"].get_status_display() if item["reward"] else "",
        }
        for item in referrals
    ]
    context = {
        **_base_context(session.locale),
        "merchant": merchant,
        "link": link,
        "link_url": referral_url(link.code) if link else "",
        "reward": reward_label(settings.MERCHANT_REFERRALS_ADVOCATE_REWARD),
        "qualifying_days": settings.MERCHANT_REFERRALS_QUALIFYING_DAYS,
        "analytics": analytics,
        "referrals": rows,
        "features": feature_navigation(),
        "query": _carried_query(request),
        "can_create": session.has_scope("admin:referrals"),
    }
    return render(request, "merchant_referrals/page.html", context)
