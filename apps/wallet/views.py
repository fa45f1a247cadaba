"""Pages and endpoints outside the JSON API: the signed pass download, Apple's PassKit web
service, the Google class logo, and the merchant's wallet page at /app/wallet/."""

import json
import logging
from email.utils import format_datetime, parsedate_to_datetime

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope
from apps.shopify.views import _base_context, _carried_query, _denied, embedded_page, feature_navigation

from . import selectors, services
from .passes import strings
from .passes.content import PassContent
from .passes.credentials import WalletNotConfigured
from .passes.images import solid_png

logger = logging.getLogger(__name__)

PAGE_SCOPE = "admin:frontend"


def _plain(status: int) -> HttpResponse:
    return HttpResponse(status=status)


@never_cache
@require_GET
def pass_download(request, token: str):
    """The pass behind a signed pass_url: a .pkpass, or a redirect to Google's Save page."""
    try:
        built = services.wallet_pass_fetch(token=token)
    except services.PassUnavailable:
        return HttpResponse(str(services.PassUnavailable.default_message), status=403, content_type="text/plain")
    except WalletNotConfigured:
        return _plain(503)
    if built.redirect_url:
        return HttpResponseRedirect(built.redirect_url)
    response = HttpResponse(built.body, content_type=built.content_type)
    response["Content-Disposition"] = 'attachment; filename="loyalty.pkpass"'
    return response


@require_GET
def logo(request, merchant_id: str):
    with merchant_scope(merchant_id):
        merchant = Merchant.objects.filter(pk=merchant_id).first()
        if merchant is None:
            return _plain(404)
        colors = services.pass_colors(merchant)
    response = HttpResponse(solid_png(colors["background"], 660, 660), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response


# --- PassKit web service (Apple calls these; paths after the pass's webServiceURL) ----------


def _authenticated(request, pass_type_identifier, serial_number):
    try:
        return services.passkit_authenticate(
            pass_type_identifier=pass_type_identifier,
            serial_number=serial_number,
            authorization=request.headers.get("Authorization", ""),
        )
    except services.PassKitUnauthorized:
        return None


@csrf_exempt
@require_http_methods(["POST", "DELETE"])
def passkit_registration(request, device_library_identifier, pass_type_identifier, serial_number):
    wallet_pass = _authenticated(request, pass_type_identifier, serial_number)
    if wallet_pass is None:
        return _plain(401)
    if request.method == "DELETE":
        services.passkit_device_unregister(wallet_pass=wallet_pass, device_library_identifier=device_library_identifier)
        return _plain(200)
    try:
        push_token = json.loads(request.body or b"{}").get("pushToken")
    except (ValueError, AttributeError):
        push_token = None
    if not isinstance(push_token, str) or not push_token or len(push_token) > 200:
        return _plain(400)
    created = services.passkit_device_register(
        wallet_pass=wallet_pass, device_library_identifier=device_library_identifier, push_token=push_token
    )
    return _plain(201 if created else 200)


@require_GET
def passkit_serials(request, device_library_identifier, pass_type_identifier):
    serials, tag = services.passkit_serials_updated(
        device_library_identifier=device_library_identifier,
        pass_type_identifier=pass_type_identifier,
        since=request.GET.get("passesUpdatedSince"),
    )
    if not serials:
        return _plain(204)
    return JsonResponse({"serialNumbers": serials, "lastUpdated": tag})


@require_GET
def passkit_latest(request, pass_type_identifier, serial_number):
    wallet_pass = _authenticated(request, pass_type_identifier, serial_number)
    if wallet_pass is None:
        return _plain(401)
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            if wallet_pass.updated_at.replace(microsecond=0) <= parsedate_to_datetime(since):
                return _plain(304)
        except (TypeError, ValueError):
            pass
    with merchant_scope(wallet_pass.merchant_id):
        locale = wallet_pass.customer.locale if wallet_pass.customer_id else "en"
        try:
            built = services.wallet_pass_build(merchant=wallet_pass.merchant, wallet_pass=wallet_pass, locale=locale)
        except WalletNotConfigured:
            return _plain(503)
    response = HttpResponse(built.body, content_type=built.content_type)
    response["Last-Modified"] = format_datetime(wallet_pass.updated_at, usegmt=True)
    return response


@csrf_exempt
@require_POST
def passkit_log(request):
    try:
        logs = json.loads(request.body or b"{}").get("logs") or []
    except (ValueError, AttributeError):
        return _plain(400)
    if isinstance(logs, list):
        services.passkit_log(messages=[str(message) for message in logs])
    return _plain(200)


# --- The merchant's page ------------------------------------------------------------------


@embedded_page
def wallet_page(request, session):
    """Pass design preview (as the shopper's phone would show it) and the export success rate."""
    merchant = session.merchant
    with merchant_scope(merchant):
        if not session.has_scope(PAGE_SCOPE):
            return _denied(request, 403, session.locale)
        colors = services.pass_colors(merchant)
        locale = session.locale if session.locale in strings.PASS_STRINGS else "en"
        preview = PassContent(
            serial_number="preview",
            merchant_id=merchant.pk,
            merchant_name=merchant.name,
            member_name="Alex Example",
            points_balance=1250,
            tier_name="Gold",
            referral_code="REF2345678",
            referral_url=services.referral_url(merchant, "REF2345678"),
            locale=locale,
            background_color=colors["background"],
            foreground_color=colors["foreground"],
            label_color=colors["label"],
        )
        stats = selectors.wallet_export_stats(merchant=merchant)
        context = {
            **_base_context(session.locale),
            "merchant": merchant,
            "features": feature_navigation(),
            "query": _carried_query(request),
            "preview": preview,
            "labels": strings.PASS_STRINGS[locale],
            "preview_rtl": locale in strings.RTL_LOCALES,
            "stats": stats,
            "success_percent": round(stats["success_rate"] * 100, 1) if stats["success_rate"] is not None else None,
            "push": selectors.wallet_pass_push_stats(merchant=merchant),
            "failed_passes": selectors.wallet_pass_failed_list(merchant=merchant),
            "recent": selectors.wallet_export_list(merchant=merchant, limit=10),
        }
    return render(request, "wallet/page.html", context)
