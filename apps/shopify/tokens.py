"""The shop's offline access: managed installation by token exchange, expiring tokens refreshed
under a per-shop lock, re-authorisation and revocation (RELIABILITY A6, D5).

Lifecycle:
- The embedded app opens with a verified session token (id token) for a shop that has no usable
  installation → `installation_exchange` trades it for an EXPIRING offline token (1-hour access
  token, 90-day refresh token), creates the Merchant on the first install and stores both tokens
  encrypted with their expiry.
- Any code that calls the Admin API asks `access_token_for(merchant=…)`. Inside the refresh
  margin the token is refreshed with the refresh token. Shopify refresh tokens are one-use
  (each refresh returns a new pair), so the refresh happens under a lock on the installation
  row: a second worker waits, then finds the new pair and uses it.
- A refused refresh (`invalid_grant`, expired refresh token) marks the installation
  `needs_reauth` and raises ShopifyAuthError; the next session-token request re-exchanges.
- `app/uninstalled` → `installation_revoke` wipes both tokens.
"""

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from shopify_app import refresh_access_token, token_exchange

from apps.core import errors
from apps.core.audit import audit_record
from apps.core.locales import DEFAULT_LOCALE, normalize_locale
from apps.core.models import Merchant, ProgramSettings
from apps.core.tenancy import merchant_scope
from apps.core.tracking import track_on_commit

from .graphql import ShopifyAuthError, ShopifyError, graphql, shop_name
from .http import shopify_http_client
from .models import ShopifyInstallation

logger = logging.getLogger(__name__)

# Refresh this long before the access token expires, so a call started now never carries a
# token that dies in flight (shopifyapp itself only keeps a 60 s margin).
REFRESH_MARGIN = timedelta(minutes=5)

# Why an installation needs the merchant to open the app again.
REAUTH_INVALID_GRANT = "invalid_grant"
REAUTH_REFRESH_TOKEN_EXPIRED = "refresh_token_expired"  # noqa: S105  (a reason code, not a secret)
REAUTH_NO_REFRESH_TOKEN = "no_refresh_token"  # noqa: S105
REAUTH_ADMIN_API_401 = "admin_api_401"

SHOP_DETAILS_QUERY = """
query ShopInstallDetails {
  shop {
    id
    name
    myshopifyDomain
    currencyCode
    ianaTimezone
    plan { publicDisplayName partnerDevelopment shopifyPlus }
  }
  shopLocales(published: true) { locale primary }
}
"""


class ShopifyReauthRequired(ShopifyAuthError):
    """The stored grant is gone; the next session-token request of the shop renews it. An API
    response carrying this error asks App Bridge to retry with a fresh session token."""

    retry_with_new_session = True


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_token_expires_at: datetime | None
    refresh_token: str
    refresh_token_expires_at: datetime | None
    scopes: str


def _app_config() -> dict:
    return {
        "client_id": settings.SHOPIFY_API_KEY,
        "client_secret": settings.SHOPIFY_API_SECRET,
        "old_client_secret": settings.SHOPIFY_API_SECRET_PREVIOUS or None,
    }


def _parse_expiry(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _pair_from(result) -> TokenPair:
    token = result.access_token
    return TokenPair(
        access_token=token.token,
        access_token_expires_at=_parse_expiry(token.expires),
        refresh_token=token.refresh_token or "",
        refresh_token_expires_at=_parse_expiry(token.refresh_token_expires),
        scopes=token.scope or "",
    )


def _store_pair(installation: ShopifyInstallation, pair: TokenPair) -> None:
    installation.access_token = pair.access_token
    installation.access_token_expires_at = pair.access_token_expires_at
    installation.refresh_token = pair.refresh_token
    installation.refresh_token_expires_at = pair.refresh_token_expires_at
    if pair.scopes:
        installation.scopes = pair.scopes
    installation.needs_reauth = False
    installation.reauth_reason = ""


def _is_fresh(installation: ShopifyInstallation, now: datetime) -> bool:
    if not installation.access_token:
        return False
    expires_at = installation.access_token_expires_at
    # A legacy non-expiring offline token has no expiry and no refresh token.
    return expires_at is None or expires_at > now + REFRESH_MARGIN


# --- Per-shop lock --------------------------------------------------------------------------
# PostgreSQL: SELECT … FOR UPDATE on the installation row serialises refreshes across processes.
# SQLite (the `make run` default) has no row locks, so one process serialises with a lock per
# merchant; that is enough for the single web process of a development stack.
_local_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
_local_locks_guard = threading.Lock()


def _local_lock(merchant_id: str) -> threading.Lock:
    with _local_locks_guard:
        return _local_locks[merchant_id]


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _process_lock(merchant_id: str):
    return _NoLock() if connection.features.has_select_for_update else _local_lock(merchant_id)


# --- Reads ----------------------------------------------------------------------------------
def installation_get(*, merchant) -> ShopifyInstallation | None:
    """Return the merchant's installation (tokens decrypted), or None before the first install."""
    with merchant_scope(merchant):
        return ShopifyInstallation.objects.filter(merchant=merchant).first()


def access_token_for(*, merchant) -> str:
    """Return a valid offline access token for the merchant's shop, refreshing it if it expires soon.

    Raises ShopifyReauthRequired (a ShopifyAuthError) when the shop must be re-authorised, and a
    retryable ShopifyError when Shopify could not be reached.

    Call it outside a transaction where you can: a refreshed pair is saved in the transaction the
    refresh runs in, so if an enclosing transaction rolls back, the new pair is lost with it and
    the old refresh token is already spent (the shop then needs a new session token).
    """
    installation = installation_get(merchant=merchant)
    if installation is None or not merchant.is_installed:
        raise ShopifyReauthRequired(detail="not installed")
    if not installation.needs_reauth and _is_fresh(installation, timezone.now()):
        return installation.access_token
    with _process_lock(merchant.pk):
        token, failure = _refresh_locked(merchant)
    if failure is not None:
        raise failure
    return token


def _refresh_locked(merchant) -> tuple[str, ShopifyError | None]:
    """Refresh under the row lock. Returns (token, None) or ("", error): the error is raised by
    the caller after the transaction commits, so `needs_reauth` is kept."""
    with transaction.atomic(), merchant_scope(merchant):
        installation = ShopifyInstallation.objects.select_for_update().get(merchant=merchant)
        now = timezone.now()
        if installation.needs_reauth:
            return "", ShopifyReauthRequired(detail=installation.reauth_reason)
        if _is_fresh(installation, now):
            return installation.access_token, None  # another worker refreshed while we waited
        if not installation.refresh_token:
            return "", _mark_needs_reauth(installation, REAUTH_NO_REFRESH_TOKEN)
        refresh_expires_at = installation.refresh_token_expires_at
        if refresh_expires_at is not None and refresh_expires_at <= now:
            return "", _mark_needs_reauth(installation, REAUTH_REFRESH_TOKEN_EXPIRED)

        result = refresh_access_token(
            {
                "shop": shop_name(merchant.shop_domain),
                "refresh_token": installation.refresh_token,
                # No `expires`: the margin is decided above, shopifyapp's own 60 s check is skipped.
                "expires": None,
                "refresh_token_expires": _iso(refresh_expires_at),
                "access_mode": "offline",
            },
            _app_config(),
            http_client=shopify_http_client(),
        )
        if result.ok and result.access_token is not None:
            _store_pair(installation, _pair_from(result))
            installation.save()
            logger.info("Shopify access token refreshed for %s", merchant.pk)
            return installation.access_token, None
        code = result.log.code
        if code in (REAUTH_INVALID_GRANT, REAUTH_REFRESH_TOKEN_EXPIRED):
            return "", _mark_needs_reauth(installation, code)
        logger.warning("Shopify token refresh failed for %s: %s", merchant.pk, code)
        retryable = code in {"server_error", "network_error", "rate_limit_exceeded"}
        return "", ShopifyError(retryable=retryable, detail=f"token refresh: {code}")


def _mark_needs_reauth(installation: ShopifyInstallation, reason: str) -> ShopifyReauthRequired:
    installation.needs_reauth = True
    installation.reauth_reason = reason
    installation.save(update_fields=["needs_reauth", "reauth_reason", "updated_at"])
    audit_record(
        merchant=installation.merchant,
        action="shopify_reauth_required",
        target=installation,
        metadata={"reason": reason},
    )
    logger.warning("Shopify installation of %s needs re-authorisation (%s)", installation.merchant_id, reason)
    return ShopifyReauthRequired(detail=reason)


def installation_mark_needs_reauth(*, merchant, reason: str = REAUTH_ADMIN_API_401) -> None:
    """Record that Shopify refused the stored token (e.g. a 401 from the Admin API)."""
    with transaction.atomic(), merchant_scope(merchant):
        installation = ShopifyInstallation.objects.select_for_update().filter(merchant=merchant).first()
        if installation is not None and not installation.needs_reauth:
            _mark_needs_reauth(installation, reason)


# --- Installation by token exchange ---------------------------------------------------------
def _connected_merchants(shop_domain: str):
    return (
        Merchant.objects.filter(shop_domain=shop_domain, is_installed=True, shopify_installation__needs_reauth=False)
        .exclude(shopify_installation__access_token="")
        .exclude(shopify_installation__refresh_token_expires_at__lte=timezone.now())
    )


def merchant_get_connected(*, shop_domain: str) -> Merchant | None:
    """Return the shop's merchant when it is installed with a grant LoyalNest can still use.

    One indexed query, no token decrypted, no network call: the hot path of every request.
    """
    return _connected_merchants(shop_domain).first()


def installation_is_usable(*, shop_domain: str) -> bool:
    return _connected_merchants(shop_domain).exists()


def merchant_for_session_token(*, token: str, claims: dict) -> Merchant:
    """The merchant of a VERIFIED session token, installing (or re-authorising) the shop first
    when LoyalNest has no usable offline token for it."""
    shop_domain = claims["shop"]
    merchant = merchant_get_connected(shop_domain=shop_domain)
    if merchant is not None:
        return merchant
    return installation_exchange(shop_domain=shop_domain, id_token=token, claims=claims)


def _shop_details(*, shop_domain: str, access_token: str) -> dict:
    """Name, currency, timezone, plan and primary locale; {} when Shopify does not answer."""
    try:
        data = graphql(shop_domain=shop_domain, access_token=access_token, query=SHOP_DETAILS_QUERY, estimated_cost=2)
    except ShopifyError as exc:
        logger.warning("Shop details of %s not read: %s", shop_domain, exc.detail)
        return {}
    shop = data.get("shop") or {}
    plan = shop.get("plan") or {}
    if plan.get("shopifyPlus"):
        plan_name = "shopify_plus"
    elif plan.get("partnerDevelopment"):
        plan_name = "partner_development"
    else:
        plan_name = str(plan.get("publicDisplayName") or "").strip().lower().replace(" ", "_")[:64]
    primary = next((item.get("locale") for item in data.get("shopLocales") or [] if item.get("primary")), None)
    currency = str(shop.get("currencyCode") or "")
    return {
        "gid": str(shop.get("id") or "")[:64],
        "name": str(shop.get("name") or "")[:255],
        "currency": currency if len(currency) == 3 and currency.isalpha() and currency.isupper() else "",
        "timezone": str(shop.get("ianaTimezone") or "")[:64],
        "shopify_plan": plan_name,
        "primary_locale": normalize_locale(primary) or "",
    }


def installation_exchange(*, shop_domain: str, id_token: str, claims: dict) -> Merchant:
    """Exchange a verified session token for an expiring offline token and store it.

    Creates the Merchant and its ProgramSettings on the first install, reinstalls an uninstalled
    shop and clears `needs_reauth`. Concurrent first requests of one shop exchange once: the
    merchant row is locked, and whoever comes second finds the installation usable.
    Raises errors.AuthenticationFailed when Shopify refuses the id token, ShopifyError otherwise.
    """
    with transaction.atomic():
        merchant, created = _merchant_get_or_create_locked(shop_domain)
        if not created and installation_is_usable(shop_domain=shop_domain):
            return merchant
        result = token_exchange(
            access_mode="offline",
            app_config=_app_config(),
            id_token={"exchangeable": True, "token": id_token, "claims": claims},
            expiring=True,
            http_client=shopify_http_client(),
        )
        if not result.ok or result.access_token is None:
            code = result.log.code
            logger.warning("Shopify token exchange for %s failed: %s", shop_domain, code)
            if code == "invalid_subject_token":
                raise errors.AuthenticationFailed()
            retryable = code in {"server_error", "network_error", "rate_limit_exceeded", "exchange_error"}
            raise ShopifyError(retryable=retryable, detail=f"token exchange: {code}")
        pair = _pair_from(result)
        details = _shop_details(shop_domain=shop_domain, access_token=pair.access_token)
        return _installation_save(merchant=merchant, created=created, pair=pair, details=details)


def _merchant_get_or_create_locked(shop_domain: str) -> tuple[Merchant, bool]:
    merchant = Merchant.objects.select_for_update().filter(shop_domain=shop_domain).first()
    if merchant is not None:
        return merchant, False
    try:
        # A concurrent first request waits here on the unique index until ours commits.
        with transaction.atomic():
            merchant = Merchant.objects.create(
                shop_domain=shop_domain, name=shop_name(shop_domain), is_installed=False, installed_at=None
            )
    except IntegrityError:
        return Merchant.objects.select_for_update().get(shop_domain=shop_domain), False
    return merchant, True


def _installation_save(*, merchant: Merchant, created: bool, pair: TokenPair, details: dict) -> Merchant:
    now = timezone.now()
    newly_installed = created or not merchant.is_installed
    for field in ("name", "currency", "timezone", "shopify_plan", "primary_locale"):
        if details.get(field):
            setattr(merchant, field, details[field])
    if not merchant.primary_locale:
        merchant.primary_locale = DEFAULT_LOCALE
    if newly_installed:
        merchant.is_installed = True
        merchant.installed_at = now
        merchant.uninstalled_at = None
    merchant.save()
    with merchant_scope(merchant):
        ProgramSettings.objects.get_or_create(merchant=merchant)
        installation = ShopifyInstallation.objects.select_for_update().filter(merchant=merchant).first()
        reauthorised = installation is not None and installation.needs_reauth
        reason = installation.reauth_reason if reauthorised else ""
        if installation is None:
            installation = ShopifyInstallation(merchant=merchant)
        _store_pair(installation, pair)
        if details.get("gid"):
            installation.shop_gid = details["gid"]
        installation.save()
        if newly_installed:
            audit_record(
                merchant=merchant,
                action="app_installed",
                target=installation,
                metadata={"scopes": installation.scopes, "reinstall": not created},
            )
            track_on_commit(
                "app_installed",
                merchant=merchant,
                distinct_id=merchant.pk,
                properties={"shop_plan": merchant.shopify_plan, "reinstall": not created},
            )
        elif reauthorised:
            audit_record(
                merchant=merchant, action="shopify_reauthorized", target=installation, metadata={"reason": reason}
            )
    logger.info("Shopify offline token stored for %s (%s)", merchant.pk, "install" if newly_installed else "renewal")
    return merchant


# --- Uninstall ------------------------------------------------------------------------------
@transaction.atomic
def installation_revoke(*, merchant) -> None:
    """Forget the shop's tokens and mark it uninstalled (`app/uninstalled`). Idempotent."""
    merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
    with merchant_scope(merchant):
        installation = ShopifyInstallation.objects.select_for_update().filter(merchant=merchant).first()
        had_tokens = installation is not None and bool(installation.access_token or installation.refresh_token)
        if installation is not None and had_tokens:
            installation.access_token = ""
            installation.access_token_expires_at = None
            installation.refresh_token = ""
            installation.refresh_token_expires_at = None
            installation.save()
        if not merchant.is_installed and not had_tokens:
            return
        merchant.is_installed = False
        merchant.uninstalled_at = timezone.now()
        merchant.save(update_fields=["is_installed", "uninstalled_at", "updated_at"])
        audit_record(merchant=merchant, action="app_uninstalled", target=merchant, metadata={})
        track_on_commit("app_uninstalled", merchant=merchant, distinct_id=merchant.pk)
