"""What the referral program asks of Shopify: who owns a shop, the shop metafield
`$app:loyalnest.merchant_referral`, and app credits (rewards).

App credits: Shopify deprecated creating them through the Admin API in 2023-07; they are created
with `appCreditCreate(appId, shopId, amount, description, test)` of the Partner API, with the
partner organization's token. The call goes through the same httpx client (timeouts, and the
local fake Shopify in tests) as every Shopify call.
"""

import hashlib
import hmac
import json
import logging

import httpx
from django.conf import settings
from django.utils import timezone

from apps.core.tenancy import merchant_scope
from apps.shopify.graphql import ShopifyError, ShopifyUserError, graphql
from apps.shopify.http import shopify_http_client
from apps.shopify.metafields.spec import NAMESPACE, SET_COST, SHOP_ID_QUERY, SHOP_METAFIELDS_SET
from apps.shopify.models import ShopifyInstallation
from apps.shopify.tokens import access_token_for

from .models import MerchantReferralLink, MerchantReferralOwner

logger = logging.getLogger(__name__)

METAFIELD_KEY = "merchant_referral"

SHOP_OWNER_QUERY = "query MerchantReferralShopOwner { shop { id email } }"

APP_CREDIT_CREATE = """
mutation AppCreditCreate($appId: ID!, $shopId: ID!, $amount: MoneyInput!, $description: String!, $test: Boolean) {
  appCreditCreate(appId: $appId, shopId: $shopId, amount: $amount, description: $description, test: $test) {
    appCredit { id amount { amount currencyCode } name test }
    userErrors { field message }
  }
}
"""


class BillingNotConfigured(ShopifyError):
    code = "billing_not_configured"
    status = 503

    def __init__(self):
        super().__init__(retryable=False, detail="Partner API settings are missing")


class CreditOutcomeUnknown(ShopifyError):
    """The request may have reached Shopify (timeout, dropped connection): never resend it blindly."""

    code = "credit_outcome_unknown"


def owner_hash(email: str) -> str:
    """A keyed hash of a shop owner's address: compares owners, identifies nobody."""
    normalized = (email or "").strip().lower()
    if not normalized:
        return ""
    return hmac.new(settings.SECRET_KEY.encode(), f"mref-owner:{normalized}".encode(), hashlib.sha256).hexdigest()


def _call(merchant, query: str, variables: dict | None = None, **kwargs) -> dict:
    token = access_token_for(merchant=merchant)
    return graphql(shop_domain=merchant.shop_domain, access_token=token, query=query, variables=variables, **kwargs)


def shop_owner_refresh(*, merchant, max_attempts: int | None = None) -> MerchantReferralOwner | None:
    """Read the shop's owner email from Shopify and store its hash; None when Shopify did not answer."""
    try:
        data = _call(merchant, SHOP_OWNER_QUERY, {}, estimated_cost=1, max_attempts=max_attempts)
    except ShopifyError as exc:
        logger.warning("shop owner of %s not read: %s", merchant.pk, exc.detail)
        return None
    shop = data.get("shop") or {}
    with merchant_scope(merchant):
        owner, _created = MerchantReferralOwner.objects.update_or_create(
            merchant=merchant,
            defaults={"owner_hash": owner_hash(str(shop.get("email") or "")), "checked_at": timezone.now()},
        )
        if shop.get("id"):
            ShopifyInstallation.objects.filter(merchant=merchant, shop_gid="").update(shop_gid=str(shop["id"])[:64])
    return owner


def _shop_gid(merchant) -> str:
    with merchant_scope(merchant):
        gid = ShopifyInstallation.objects.filter(merchant=merchant).values_list("shop_gid", flat=True).first()
    return gid or _call(merchant, SHOP_ID_QUERY, {}, estimated_cost=1)["shop"]["id"]


def referral_metafield_write(*, merchant) -> str | None:
    """Write the advocate's active link to the shop (the seeds' example value); returns compareDigest."""
    with merchant_scope(merchant):
        link = MerchantReferralLink.objects.filter(merchant=merchant, is_active=True).first()
    if link is None:
        return None
    from .catalogue import referral_url

    value = json.dumps(
        {"referral_code": link.code, "reward_id": link.reward_id, "status": "active", "url": referral_url(link.code)},
        sort_keys=True,
        separators=(",", ":"),
    )
    owner = _shop_gid(merchant)
    data = _call(
        merchant,
        SHOP_METAFIELDS_SET,
        {
            "metafields": [
                {"ownerId": owner, "namespace": NAMESPACE, "key": METAFIELD_KEY, "type": "json", "value": value}
            ]
        },
        user_errors_at="metafieldsSet.userErrors",
        estimated_cost=SET_COST,
    )
    written = data["metafieldsSet"]["metafields"]
    return written[0]["compareDigest"] if written else None


def partner_shop_gid(admin_gid: str) -> str:
    """`gid://shopify/Shop/123` (Admin API) → `gid://partners/Shop/123` (Partner API)."""
    return f"gid://partners/Shop/{admin_gid.rsplit('/', 1)[-1]}"


def app_credit_create(*, merchant, amount, currency: str, description: str) -> str:
    """Credit the shop through the Partner API; returns the credit's id.

    Raises ShopifyError(retryable=True) when Shopify answered that it did nothing (429, 5xx,
    THROTTLED), ShopifyUserError when it refused, CreditOutcomeUnknown when the answer was lost.
    """
    if not (settings.SHOPIFY_PARTNER_API_TOKEN and settings.SHOPIFY_PARTNER_ORGANIZATION_ID):
        raise BillingNotConfigured()
    url = (
        f"{settings.SHOPIFY_PARTNER_API_URL.rstrip('/')}/{settings.SHOPIFY_PARTNER_ORGANIZATION_ID}"
        f"/api/{settings.SHOPIFY_PARTNER_API_VERSION}/graphql.json"
    )
    variables = {
        "appId": settings.SHOPIFY_PARTNER_APP_GID,
        "shopId": partner_shop_gid(_shop_gid(merchant)),
        "amount": {"amount": str(amount), "currencyCode": currency},
        "description": description,
        "test": settings.MERCHANT_REFERRALS_TEST_CREDITS,
    }
    try:
        response = shopify_http_client().post(
            url,
            json={"query": APP_CREDIT_CREATE, "variables": variables},
            headers={"X-Shopify-Access-Token": settings.SHOPIFY_PARTNER_API_TOKEN},
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ShopifyError(retryable=True, detail=f"partner API: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise CreditOutcomeUnknown(retryable=False, detail=f"partner API: {type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise ShopifyError(retryable=True, detail=f"partner API HTTP {response.status_code}")
    if response.status_code != 200:
        raise ShopifyError(retryable=False, detail=f"partner API HTTP {response.status_code}")
    body = response.json()
    errors = body.get("errors")
    if errors:
        throttled = any(isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)
        raise ShopifyError(retryable=throttled, detail="partner API errors")
    payload = (body.get("data") or {}).get("appCreditCreate") or {}
    if payload.get("userErrors"):
        raise ShopifyUserError(payload["userErrors"])
    return str((payload.get("appCredit") or {}).get("id") or "")
