"""The Flow action endpoint: `POST /shopify/flow/actions/<handle>`.

Verification first (shopifyapp's `verify_flow_action_req`: HMAC-SHA256 of the raw body with the
app's secret, or the previous one during a rotation), before anything is parsed. The shop is the
`shopify_domain` of the signed body — the `X-Shopify-Shop-Domain` header is not signed, so when
present it must agree. The handle must be registered and match the signed body's `handle`.

Answers: 200 with the handler's fields; 401 for a missing or bad signature (nothing runs);
404 for an unknown handle or shop; 400 for malformed input. Flow retries 5xx and timeouts with
the same `action_run_id`.
"""

import json
import logging

from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from shopify_app import ShopifyApp

from apps.core.api.responses import error_response, ok_body
from apps.core.errors import ApplicationError
from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope, scopes_disabled

from ..auth import SHOP_HOST
from .actions import flow_action_get

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


def _verifier() -> ShopifyApp:
    return ShopifyApp(
        client_id=settings.SHOPIFY_API_KEY or "unset",
        client_secret=settings.SHOPIFY_API_SECRET,
        old_client_secret=getattr(settings, "SHOPIFY_API_SECRET_PREVIOUS", "") or None,
    )


def _unauthorized():
    return error_response("authentication_failed", _("The request signature is missing or invalid."), 401)


def _bad_request(message):
    return error_response("validation_error", message, 400)


@csrf_exempt
@require_POST
def flow_action(request, handle: str):
    if len(request.body) > MAX_BODY_BYTES:
        return error_response("payload_too_large", _("The request body is too large."), 413)
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return _unauthorized()
    if not settings.SHOPIFY_API_SECRET:
        return _unauthorized()
    verified = _verifier().verify_flow_action_req(
        {"method": request.method, "headers": dict(request.headers), "url": request.build_absolute_uri(), "body": body}
    )
    if not verified.ok:
        logger.info("Flow action refused: %s", verified.log.code)
        return _unauthorized()

    try:
        payload = json.loads(body)
    except ValueError:
        return error_response("malformed_request", _("The request body is not valid JSON."), 400)
    if not isinstance(payload, dict):
        return _bad_request(_("Send a JSON object."))
    shop_domain = str(payload.get("shopify_domain") or "").lower()
    header_shop = (verified.shop or "").lower()
    if not SHOP_HOST.match(shop_domain) or (header_shop and header_shop != shop_domain.removesuffix(".myshopify.com")):
        return _bad_request(_("The shop of the request is missing or inconsistent."))
    if payload.get("handle") not in (None, handle):
        return _bad_request(_("The action handle does not match the request."))
    handler = flow_action_get(handle)
    if handler is None:
        return error_response("not_found", _("This Flow action does not exist."), 404)
    action_run_id = payload.get("action_run_id")
    if not isinstance(action_run_id, str) or not action_run_id.strip() or len(action_run_id) > 200:
        return _bad_request(_("The action run id is missing or invalid."))
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        return _bad_request(_("The action properties are missing."))

    with scopes_disabled():
        merchant = Merchant.objects.filter(shop_domain=shop_domain, is_installed=True).first()
    if merchant is None:
        return error_response("not_found", _("This shop is not connected to LoyalNest."), 404)
    try:
        with merchant_scope(merchant):
            fields = handler(merchant=merchant, action_run_id=action_run_id.strip(), properties=properties)
    except ApplicationError as refused:
        return error_response(refused.code, refused.message, refused.status, refused.details)
    return JsonResponse(ok_body(**(fields or {})))
