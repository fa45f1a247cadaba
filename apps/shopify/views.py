"""Pages of the embedded Shopify admin (an iframe inside admin.shopify.com).

Identity: Shopify loads the app URL with an `id_token` query parameter (a session token); the
shop comes from that verified token only. A verified token of a shop LoyalNest has no usable
offline token for installs it first (token exchange, apps.shopify.tokens). A document request
without `id_token` but with a `shop` (an in-app link, a reload) is sent to the session-token
bounce page, where App Bridge fetches a fresh token and reloads the page with it. In demo mode
(`make run`: DEBUG and DEMO_MODE) a request with neither opens the demo shop, so a newcomer
needs no Shopify store.

Every page here may be framed by its own shop's admin only: `frame-ancestors https://{shop}
https://admin.shopify.com` replaces Django's `X-Frame-Options: DENY`, which stays on for
everything else (Django admin above all).
"""

import logging
from dataclasses import dataclass
from functools import wraps
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET
from shopify_app import app_home_patch_id_token

from apps.core import errors
from apps.core.locales import DEFAULT_LOCALE, django_language, is_rtl, normalize_locale
from apps.core.models import StaffMember
from apps.core.rbac import has_scope
from apps.core.tenancy import merchant_scope
from apps.notifications.selectors import notification_delivery_stats, notification_failure_list

from . import selectors
from .auth import DEMO_SHOP_DOMAIN, SHOP_HOST, decode_session_token
from .graphql import ShopifyError
from .tokens import merchant_for_session_token

logger = logging.getLogger(__name__)

BOUNCE_PATH = "/app/session-token/"
RELOAD_PARAMETER = "shopify-reload"

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

    def has_scope(self, scope: str) -> bool:
        """Whether the signed-in staff member may open a page that needs `scope`: always in demo
        mode, and for Shopify staff LoyalNest has no role for (the shop's own admin users)."""
        if self.is_demo:
            return True
        with merchant_scope(self.merchant):
            staff = StaffMember.objects.filter(merchant=self.merchant, shopify_user_id=self.shopify_user_id).first()
        return staff is None or has_scope(staff, scope)


class EmbeddedAccessDenied(Exception):
    def __init__(self, status: int):
        self.status = status
        super().__init__(status)


class SessionTokenMissing(Exception):
    """A document request of a shop without `id_token`: bounce for a fresh one."""

    def __init__(self, shop: str):
        self.shop = shop
        super().__init__(shop)


def frame_ancestors(shop: str | None) -> str:
    """The CSP that lets only this shop's admin frame the page (none when the shop is unknown)."""
    if shop and SHOP_HOST.match(shop):
        return f"frame-ancestors https://{shop} https://admin.shopify.com"
    return "frame-ancestors 'none'"


def demo_mode_enabled() -> bool:
    return bool(settings.DEBUG and settings.DEMO_MODE)


def _shop_parameter(request) -> str | None:
    shop = request.GET.get("shop", "").strip().lower()
    return shop if SHOP_HOST.match(shop) else None


def _identify(request, locale: str | None) -> EmbeddedSession:
    token = request.GET.get("id_token", "").strip()
    if token:
        try:
            payload = decode_session_token(token)
        except errors.AuthenticationFailed as exc:
            raise EmbeddedAccessDenied(401) from exc
        shop, user_id, is_demo = payload["shop"], str(payload["sub"]), False
        try:
            # Installed shops: one query. Otherwise install (or re-authorise) by token exchange.
            merchant = merchant_for_session_token(token=token, claims=payload)
        except errors.AuthenticationFailed as exc:
            raise EmbeddedAccessDenied(401) from exc
        except ShopifyError as exc:
            logger.warning("Embedded page of %s: token exchange failed (%s)", shop, exc.detail)
            raise EmbeddedAccessDenied(503) from exc
    elif _shop_parameter(request):
        raise SessionTokenMissing(_shop_parameter(request))
    elif demo_mode_enabled():
        shop, user_id, is_demo = DEMO_SHOP_DOMAIN, "demo-owner", True
        merchant = selectors.merchant_get_installed(shop_domain=shop)
        if merchant is None:
            raise EmbeddedAccessDenied(401)
    else:
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
    demo_missing = demo_mode_enabled() and not request.GET.get("id_token")
    context = {
        **_base_context(locale),
        "status": status,
        "demo_missing": demo_missing,
        "unavailable_message": errors.ServiceUnavailable.default_message,
    }
    response = render(request, "shopify/unauthorized.html", context, status=status)
    response["Content-Security-Policy"] = frame_ancestors(_shop_parameter(request))
    if status == 401:
        response["X-Shopify-Retry-Invalid-Session-Request"] = "1"
    if status == 503:
        response["Retry-After"] = "5"
    return response


def _without_id_token(request) -> str:
    """The request's query string minus `id_token` (it expires in a minute) and any reload target."""
    kept = [
        (key, value)
        for key, values in request.GET.lists()
        if key not in ("id_token", RELOAD_PARAMETER)
        for value in values
    ]
    return urlencode(kept)


def _bounce_redirect(request, shop: str):
    """Send a document request without a session token to the bounce page, which reloads this
    page with a fresh one (the redirect of shopifyapp's verify_app_home_req, kept relative)."""
    query = _without_id_token(request)
    reload_path = request.path + (f"?{query}" if query else "")
    bounce_query = (f"{query}&" if query else "") + f"{RELOAD_PARAMETER}={quote(reload_path, safe='')}"
    response = HttpResponseRedirect(f"{BOUNCE_PATH}?{bounce_query}")
    response["Content-Security-Policy"] = frame_ancestors(shop)
    return response


def embedded_page(view):
    """Verify the embedded session, enter the shop's tenant scope, activate its locale, and
    frame-protect the response.

    The wrapped view is called as `view(request, session, *args, **kwargs)` and returns a
    response rendered in the session's locale.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        requested = normalize_locale(request.GET.get("locale"))
        try:
            session = _identify(request, requested)
        except SessionTokenMissing as missing:
            return _bounce_redirect(request, missing.shop)
        except EmbeddedAccessDenied as denied:
            with translation.override(django_language(requested or DEFAULT_LOCALE)):
                return _denied(request, denied.status, requested or DEFAULT_LOCALE)
        language = django_language(session.locale)
        # Inside the shop's tenant scope, like every API view: a query of another shop's rows
        # fails closed.
        with translation.override(language), merchant_scope(session.merchant):
            response = view(request, session, *args, **kwargs)
        response["Content-Security-Policy"] = frame_ancestors(session.shop)
        response["Content-Language"] = language
        return response

    return xframe_options_exempt(never_cache(require_GET(wrapper)))


@require_GET
def app_root(request):
    """`/` → `/app/` with Shopify's parameters, for an app URL set to the bare host (Shopify CLI's
    `shopify app dev` points the app URL at its tunnel's root)."""
    query = request.META.get("QUERY_STRING", "")
    return HttpResponseRedirect("/app/" + (f"?{query}" if query else ""))


def _is_reload_target(value: str) -> bool:
    """Only a page of the embedded admin on this origin may be reloaded (no `//host`, no scheme)."""
    return value.startswith("/app/") and not value.startswith("//") and "\\" not in value


@xframe_options_exempt
@never_cache
@require_GET
def session_token_bounce(request):
    """The session-token bounce page: App Bridge alone, which fetches a fresh session token and
    reloads the `shopify-reload` page with it (Shopify's "patch id token" page)."""
    locale = normalize_locale(request.GET.get("locale")) or DEFAULT_LOCALE
    shop = _shop_parameter(request)
    reload_target = request.GET.get(RELOAD_PARAMETER, "")
    result = app_home_patch_id_token(
        {"method": "GET", "url": request.build_absolute_uri(), "headers": {}, "body": ""},
        {"client_id": settings.SHOPIFY_API_KEY, "client_secret": settings.SHOPIFY_API_SECRET},
    )
    if not result.ok or shop is None or not _is_reload_target(reload_target):
        response = HttpResponse("Bad Request", status=400, content_type="text/plain; charset=utf-8")
        response["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response
    with translation.override(django_language(locale)):
        response = render(request, "shopify/session_token_bounce.html", _base_context(locale))
    # shopifyapp's page is the App Bridge script tag; ours adds the document around it so the
    # fallback text is localized. Its preload hint is kept; the CSP is ours (validated shop).
    link = result.response.headers.get("Link")
    if link:
        response["Link"] = link
    response["Content-Security-Policy"] = frame_ancestors(shop)
    return response


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
        "notification_stats": notification_delivery_stats(merchant=merchant),
        "notification_failures": notification_failure_list(merchant=merchant, limit=5),
        "features": feature_navigation(),
        "query": _carried_query(request),
    }
    return render(request, "shopify/dashboard.html", context)


def _carried_query(request) -> str:
    """Shopify's context parameters (not the token, it expires in a minute) for in-app links."""
    kept = {key: request.GET[key] for key in ("shop", "host", "locale", "embedded") if request.GET.get(key)}
    return f"?{urlencode(kept)}" if kept else ""
