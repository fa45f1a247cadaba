"""Pages of the embedded Shopify admin (an iframe inside admin.shopify.com).

Identity: Shopify loads the app URL with an `id_token` query parameter (a session token); the
shop comes from that verified token only. In demo mode (`make run`: DEBUG and DEMO_MODE) a
request without a token opens the demo shop, so a newcomer needs no Shopify store.

Every page here may be framed by its own shop's admin only: `frame-ancestors https://{shop}
https://admin.shopify.com` replaces Django's `X-Frame-Options: DENY`, which stays on for
everything else (Django admin above all).
"""

from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from apps.core import errors
from apps.core.locales import DEFAULT_LOCALE, django_language, is_rtl, normalize_locale

from . import selectors
from .auth import DEMO_SHOP_DOMAIN, SHOP_HOST, decode_session_token

# The feature pages of the embedded admin, in navigation order: (slug under /app/, label).
# A page that is not routed yet is listed as coming in a later release instead of linked.
FEATURES = [
    ("rfm", _("RFM analytics")),
    ("multi-store", _("Multi-store sync")),
    ("merchant-referrals", _("Merchant referrals")),
    ("gamification", _("Gamification")),
    ("widgets", _("Storefront widgets")),
    ("community", _("Slack community")),
    ("wallet", _("Wallet passes")),
]


@dataclass(frozen=True)
class EmbeddedSession:
    merchant: object
    shop: str
    shopify_user_id: str
    locale: str
    is_demo: bool


class EmbeddedAccessDenied(Exception):
    def __init__(self, status: int):
        self.status = status
        super().__init__(status)


def frame_ancestors(shop: str | None) -> str:
    """The CSP that lets only this shop's admin frame the page (none when the shop is unknown)."""
    if shop and SHOP_HOST.match(shop):
        return f"frame-ancestors https://{shop} https://admin.shopify.com"
    return "frame-ancestors 'none'"


def demo_mode_enabled() -> bool:
    return bool(settings.DEBUG and settings.DEMO_MODE)


def _identify(request, locale: str | None) -> EmbeddedSession:
    token = request.GET.get("id_token", "").strip()
    if token:
        try:
            payload = decode_session_token(token)
        except errors.AuthenticationFailed as exc:
            raise EmbeddedAccessDenied(401) from exc
        shop, user_id, is_demo = payload["shop"], str(payload["sub"]), False
    elif demo_mode_enabled():
        shop, user_id, is_demo = DEMO_SHOP_DOMAIN, "demo-owner", True
    else:
        raise EmbeddedAccessDenied(401)
    merchant = selectors.merchant_get_installed(shop_domain=shop)
    if merchant is None:
        raise EmbeddedAccessDenied(401)
    if selectors.staff_member_is_blocked(merchant=merchant, shopify_user_id=user_id):
        raise EmbeddedAccessDenied(403)
    return EmbeddedSession(
        merchant=merchant,
        shop=shop,
        shopify_user_id=user_id,
        locale=locale or merchant.primary_locale or DEFAULT_LOCALE,
        is_demo=is_demo,
    )


def _base_context(locale: str) -> dict:
    return {
        "html_lang": locale,
        "is_rtl": is_rtl(locale),
        "shopify_api_key": settings.SHOPIFY_API_KEY,
    }


def _denied(request, status: int, locale: str):
    # Only a shop-shaped value reaches the CSP; it grants framing of a page that shows no data.
    shop = request.GET.get("shop", "").strip().lower()
    demo_missing = demo_mode_enabled() and not request.GET.get("id_token")
    context = {**_base_context(locale), "status": status, "demo_missing": demo_missing}
    response = render(request, "shopify/unauthorized.html", context, status=status)
    response["Content-Security-Policy"] = frame_ancestors(shop if SHOP_HOST.match(shop) else None)
    if status == 401:
        response["X-Shopify-Retry-Invalid-Session-Request"] = "1"
    return response


def embedded_page(view):
    """Verify the embedded session, activate its locale, and frame-protect the response.

    The wrapped view is called as `view(request, session, *args, **kwargs)` and returns a
    response rendered in the session's locale.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        requested = normalize_locale(request.GET.get("locale"))
        try:
            session = _identify(request, requested)
        except EmbeddedAccessDenied as denied:
            with translation.override(django_language(requested or DEFAULT_LOCALE)):
                return _denied(request, denied.status, requested or DEFAULT_LOCALE)
        language = django_language(session.locale)
        with translation.override(language):
            response = view(request, session, *args, **kwargs)
        response["Content-Security-Policy"] = frame_ancestors(session.shop)
        response["Content-Language"] = language
        return response

    return xframe_options_exempt(never_cache(require_GET(wrapper)))


def feature_navigation() -> list[dict]:
    """The feature pages: linked when routed, otherwise marked as coming later."""
    items = []
    for slug, label in FEATURES:
        path = f"/app/{slug}/"
        try:
            resolve(path)
            available = True
        except Resolver404:
            available = False
        items.append({"slug": slug, "label": label, "path": path, "available": available})
    return items


@embedded_page
def dashboard(request, session: EmbeddedSession):
    merchant = session.merchant
    totals = selectors.customer_totals(merchant=merchant)
    context = {
        **_base_context(session.locale),
        "merchant": merchant,
        "is_demo": session.is_demo,
        "customer_count": totals["customer_count"],
        "points_outstanding": totals["points_outstanding"],
        "tiers": selectors.vip_tier_customer_counts(merchant=merchant, locale=session.locale),
        "transactions": selectors.points_transaction_latest_list(merchant=merchant, limit=10),
        "features": feature_navigation(),
        "query": _carried_query(request),
    }
    return render(request, "shopify/dashboard.html", context)


def _carried_query(request) -> str:
    """Shopify's context parameters (not the token, it expires in a minute) for in-app links."""
    kept = {key: request.GET[key] for key in ("shop", "host", "locale", "embedded") if request.GET.get(key)}
    return f"?{urlencode(kept)}" if kept else ""
