"""Writes of the wallet feature: exports, pass files, PassKit registrations, update pushes."""

import contextlib
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import ApplicationError
from apps.core.models import Customer, ProgramSettings, localized
from apps.core.services.referrals import referral_link_get_or_create
from apps.core.streams import stream_append_on_commit
from apps.core.tenancy import merchant_scope, scopes_disabled
from apps.core.tracking import track_on_commit
from apps.notifications.services import notify
from apps.slack_community.selectors import beta_feature_enabled

from . import links
from .models import ExportStatus, PushStatus, WalletDevice, WalletExport, WalletPass, WalletPassLog, WalletType
from .passes import apple, google
from .passes.content import PassContent
from .passes.credentials import WalletNotConfigured, apple_signer, google_issuer
from .providers import WalletProviderError
from .providers.apns import ApnsDeviceGone, apns_client
from .providers.google_wallet import loyalty_object_patch

logger = logging.getLogger(__name__)

DEFAULT_COLORS = {"background": "#1f5199", "foreground": "#ffffff", "label": "#dbe6f5"}


class PassUnavailable(ApplicationError):
    code = "pass_unavailable"
    status = 403
    default_message = _("This wallet link has expired. Export your card again.")


class GoogleWalletNotEnabled(WalletNotConfigured):
    """Google Wallet is the `google_wallet` beta feature (LoyalNest Collective): refused until the
    merchant switches it on. Apple Wallet is for everyone."""

    code = "wallet_not_enabled"
    status = 403


class PassKitUnauthorized(Exception):
    """A PassKit request without the pass's authentication token (answered 401)."""


def referral_url(merchant, code: str) -> str:
    # The storefront's referral landing: the widget reads `ref` (as apps.shopify.storefront).
    return f"https://{merchant.shop_domain}/?ref={code}"


def pass_colors(merchant) -> dict:
    """The merchant's branding: the widget accent colour from program settings, else defaults."""
    config = ProgramSettings.objects.filter(merchant=merchant).values_list("theme_extension_config", flat=True).first()
    colors = ((config or {}).get("colors") or {}) if isinstance(config, dict) else {}
    background = colors.get("accent") or DEFAULT_COLORS["background"]
    foreground = colors.get("accent_text") or DEFAULT_COLORS["foreground"]
    return {"background": background, "foreground": foreground, "label": foreground}


def pass_content_build(*, merchant, customer, wallet_pass: WalletPass, locale: str) -> PassContent:
    """Gather what the customer's pass shows now: balance, tier, name, referral link, colours."""
    link = referral_link_get_or_create(merchant=merchant, customer=customer)
    tier = customer.vip_tier
    colors = pass_colors(merchant)
    return PassContent(
        serial_number=wallet_pass.pk,
        merchant_id=merchant.pk,
        merchant_name=merchant.name,
        member_name=customer.display_name or customer.email or "",
        points_balance=customer.points_balance,
        tier_name=localized(tier.name, locale) if tier is not None else "",
        referral_code=link.code,
        referral_url=referral_url(merchant, link.code),
        locale=locale,
        background_color=colors["background"],
        foreground_color=colors["foreground"],
        label_color=colors["label"],
    )


def content_hash(content: PassContent) -> str:
    return hashlib.sha256(json.dumps(content.visible, sort_keys=True).encode()).hexdigest()


@dataclass
class BuiltPass:
    content_type: str
    body: bytes = b""
    redirect_url: str = ""
    last_modified: datetime | None = None


def wallet_pass_build(*, merchant, wallet_pass: WalletPass, locale: str) -> BuiltPass:
    """Build the pass file (Apple) or the Save link (Google) from the customer's current state."""
    customer = Customer.objects.select_related("vip_tier").get(merchant=merchant, pk=wallet_pass.customer_id)
    content = pass_content_build(merchant=merchant, customer=customer, wallet_pass=wallet_pass, locale=locale)
    if wallet_pass.wallet_type == WalletType.APPLE:
        body = apple.apple_pass_build(
            content,
            signer=apple_signer(),
            web_service_url=links.web_service_url(),
            authentication_token=wallet_pass.authentication_token,
        )
        return BuiltPass("application/vnd.apple.pkpass", body=body, last_modified=wallet_pass.updated_at)
    token = google.save_jwt(
        content,
        issuer=google_issuer(),
        logo_url=links.logo_url(merchant.pk),
        origins=[f"https://{merchant.shop_domain}"],
    )
    return BuiltPass("text/html", redirect_url=google.save_url(token), last_modified=wallet_pass.updated_at)


def _credentials_check(wallet_type: str) -> None:
    apple_signer() if wallet_type == WalletType.APPLE else google_issuer()


def wallet_pass_export(*, merchant, customer, wallet_type: str, locale: str, actor=None) -> WalletExport:
    """Build a signed pass of the customer's balance and referral code, record the export, and
    answer with a short-lived `pass_url`. A failure is recorded (`wallet_export_failed`) and raised.
    Google passes need the merchant's `google_wallet` beta flag (refused before anything is recorded)."""
    if wallet_type == WalletType.GOOGLE and not beta_feature_enabled(merchant, "google_wallet"):
        raise GoogleWalletNotEnabled()
    try:
        with transaction.atomic():
            export = _export(merchant=merchant, customer=customer, wallet_type=wallet_type, locale=locale, actor=actor)
    except ApplicationError as exc:
        _export_failed(merchant=merchant, customer=customer, wallet_type=wallet_type, locale=locale, actor=actor,
                       error_code=exc.code)  # fmt: skip
        raise
    except Exception:
        logger.exception("wallet export failed")
        _export_failed(merchant=merchant, customer=customer, wallet_type=wallet_type, locale=locale, actor=actor,
                       error_code="internal_error")  # fmt: skip
        raise
    return export


def _export(*, merchant, customer, wallet_type, locale, actor) -> WalletExport:
    _credentials_check(wallet_type)
    customer = Customer.objects.select_related("vip_tier").get(merchant=merchant, pk=customer.pk)
    wallet_pass, _created = WalletPass.objects.get_or_create(
        merchant=merchant, customer=customer, wallet_type=wallet_type
    )
    content = pass_content_build(merchant=merchant, customer=customer, wallet_pass=wallet_pass, locale=locale)
    if wallet_type == WalletType.APPLE:
        # Build and sign now, so a broken certificate is a failed export rather than a broken link.
        apple.apple_pass_build(
            content,
            signer=apple_signer(),
            web_service_url=links.web_service_url(),
            authentication_token=wallet_pass.authentication_token,
        )
    WalletPass.objects.filter(pk=wallet_pass.pk).update(content_hash=content_hash(content))
    pass_data = {**content.visible, "serial_number": wallet_pass.pk, "wallet_type": wallet_type}
    export = WalletExport.objects.create(
        merchant=merchant,
        customer=customer,
        wallet_type=wallet_type,
        locale=locale,
        serial_number=wallet_pass.pk,
        pass_data=json.dumps(pass_data, sort_keys=True),
    )
    export.pass_url = links.pass_url_make(merchant_id=merchant.pk, export_id=export.pk)
    audit_record(
        merchant=merchant,
        actor=actor,
        action="wallet_exported",
        target=export,
        metadata={"wallet_type": wallet_type, "points_balance": content.points_balance, "customer_id": customer.pk},
    )
    stream_append_on_commit(
        merchant_id=merchant.pk,
        key=f"wallet:{customer.pk}",
        data={
            "export_id": export.pk,
            "wallet_type": wallet_type,
            "serial_number": wallet_pass.pk,
            "points_balance": content.points_balance,
            "referral_code": content.referral_code,
            "created_at": export.created_at,
        },
    )
    track_on_commit(
        "wallet_exported",
        merchant=merchant,
        distinct_id=customer.pk,
        properties={"wallet_type": wallet_type, "locale": locale, "by_staff": actor is not None},
    )
    notify(
        merchant=merchant,
        type="wallet_exported",
        idempotency_key=f"wallet_exported:{export.pk}",
        customer=customer,
        locale=locale,
        context={"points_balance": content.points_balance, "pass_url": export.pass_url},
    )
    return export


def _export_failed(*, merchant, customer, wallet_type, locale, actor, error_code: str) -> None:
    with transaction.atomic():
        export = WalletExport.objects.create(
            merchant=merchant,
            customer=customer,
            wallet_type=wallet_type,
            locale=locale,
            status=ExportStatus.FAILED,
            error_code=error_code[:64],
        )
        audit_record(
            merchant=merchant,
            actor=actor,
            action="wallet_export_failed",
            target=export,
            metadata={"wallet_type": wallet_type, "error_code": error_code, "customer_id": customer.pk},
        )
        track_on_commit(
            "wallet_export_failed",
            merchant=merchant,
            distinct_id=customer.pk,
            properties={"wallet_type": wallet_type, "error_code": error_code},
        )


def wallet_pass_fetch(*, token: str) -> BuiltPass:
    """The pass behind a signed `pass_url`, built now. PassUnavailable when expired or altered."""
    from django.core import signing

    try:
        merchant_id, export_id = links.pass_token_read(token)
    except signing.BadSignature as exc:  # SignatureExpired is a BadSignature
        raise PassUnavailable() from exc
    with merchant_scope(merchant_id):
        export = (
            WalletExport.objects.filter(merchant_id=merchant_id, pk=export_id, status=ExportStatus.EXPORTED)
            .select_related("merchant")
            .first()
        )
        if export is None:
            raise PassUnavailable()
        wallet_pass = WalletPass.objects.get(merchant_id=merchant_id, pk=export.serial_number)
        return wallet_pass_build(merchant=export.merchant, wallet_pass=wallet_pass, locale=export.locale)


# --- PassKit web service -------------------------------------------------------------------


def _pass_for(*, pass_type_identifier: str, serial_number: str) -> WalletPass | None:
    from django.conf import settings

    if not secrets.compare_digest(pass_type_identifier, settings.WALLET_APPLE_PASS_TYPE_ID or "\0"):
        return None
    with scopes_disabled():  # the serial number names the merchant; checked by the token next
        return (
            WalletPass.objects.filter(pk=serial_number, wallet_type=WalletType.APPLE).select_related("merchant").first()
        )


def passkit_authenticate(*, pass_type_identifier: str, serial_number: str, authorization: str) -> WalletPass:
    """The pass whose `ApplePass <token>` matches; PassKitUnauthorized otherwise."""
    wallet_pass = _pass_for(pass_type_identifier=pass_type_identifier, serial_number=serial_number)
    scheme, _sep, token = (authorization or "").partition(" ")
    expected = wallet_pass.authentication_token if wallet_pass is not None else secrets.token_urlsafe(32)
    if scheme != "ApplePass" or not secrets.compare_digest(token.strip(), expected) or wallet_pass is None:
        raise PassKitUnauthorized()
    return wallet_pass


def passkit_device_register(*, wallet_pass: WalletPass, device_library_identifier: str, push_token: str) -> bool:
    """Register a device for the pass's updates; True when new (201), False when known (200)."""
    with merchant_scope(wallet_pass.merchant_id):
        device = WalletDevice.objects.filter(
            wallet_pass=wallet_pass, device_library_identifier=device_library_identifier
        ).first()
        if device is not None:
            if device.push_token != push_token:
                WalletDevice.objects.filter(pk=device.pk).update(push_token=push_token)
            return False
        try:
            with transaction.atomic():
                WalletDevice.objects.create(
                    merchant_id=wallet_pass.merchant_id,
                    wallet_pass=wallet_pass,
                    device_library_identifier=device_library_identifier,
                    push_token=push_token,
                )
        except IntegrityError:
            return False  # a concurrent duplicate registration won
        return True


def passkit_device_unregister(*, wallet_pass: WalletPass, device_library_identifier: str) -> None:
    with merchant_scope(wallet_pass.merchant_id):
        WalletDevice.objects.filter(
            wallet_pass=wallet_pass, device_library_identifier=device_library_identifier
        ).delete()


def passkit_log(*, messages: list[str]) -> None:
    WalletPassLog.objects.bulk_create([WalletPassLog(message=str(message)[:1000]) for message in messages[:100]])


# --- Keeping passes current ------------------------------------------------------------------


def wallet_passes_mark_changed(*, merchant, customer_ids) -> list[str]:
    """Mark the customers' passes as changed (set-based, in the caller's transaction); their ids."""
    pass_ids = list(
        WalletPass.objects.filter(merchant=merchant, customer_id__in=set(customer_ids)).values_list("pk", flat=True)
    )
    if pass_ids:
        WalletPass.objects.filter(merchant=merchant, pk__in=pass_ids).update(
            push_status=PushStatus.PENDING, push_attempts=0, updated_at=timezone.now()
        )
    return pass_ids


def wallet_passes_push(*, merchant, pass_ids: list[str]) -> list[str]:
    """Push every pending pass: APNs to each registered Apple device, a PATCH of each Google
    object. Returns the ids whose push failed in a way a retry can help."""
    retry = []
    passes = WalletPass.objects.filter(merchant=merchant, pk__in=pass_ids, push_status=PushStatus.PENDING)
    for wallet_pass in passes.select_related("customer", "customer__vip_tier"):
        try:
            if wallet_pass.wallet_type == WalletType.APPLE:
                _push_apple(merchant=merchant, wallet_pass=wallet_pass)
            else:
                _push_google(merchant=merchant, wallet_pass=wallet_pass)
        except (WalletProviderError, WalletNotConfigured) as exc:
            retryable = getattr(exc, "retryable", False)
            message = str(exc) if isinstance(exc, WalletProviderError) else exc.code
            WalletPass.objects.filter(pk=wallet_pass.pk).update(
                push_attempts=F("push_attempts") + 1,
                last_push_error=message[:255],
                push_status=PushStatus.PENDING if retryable else PushStatus.FAILED,
            )
            if retryable:
                retry.append(wallet_pass.pk)
            continue
        WalletPass.objects.filter(pk=wallet_pass.pk).update(
            push_status=PushStatus.CURRENT, last_push_error="", last_pushed_at=timezone.now()
        )
    return retry


def wallet_passes_give_up(*, merchant, pass_ids: list[str]) -> int:
    """Retries are exhausted: the passes end `failed`, visible in admin and on the wallet page."""
    return WalletPass.objects.filter(merchant=merchant, pk__in=pass_ids, push_status=PushStatus.PENDING).update(
        push_status=PushStatus.FAILED
    )


def _push_apple(*, merchant, wallet_pass: WalletPass) -> None:
    devices = list(WalletDevice.objects.filter(merchant=merchant, wallet_pass=wallet_pass))
    if not devices:
        return
    client = apns_client()
    failure = None
    for device in devices:
        try:
            client.push(device.push_token)
        except ApnsDeviceGone:
            WalletDevice.objects.filter(pk=device.pk).delete()
        except WalletProviderError as exc:
            failure = exc
    if failure is not None:
        raise failure


def _push_google(*, merchant, wallet_pass: WalletPass) -> None:
    customer = wallet_pass.customer
    issuer = google_issuer()
    content = pass_content_build(merchant=merchant, customer=customer, wallet_pass=wallet_pass, locale=customer.locale)
    body = google.loyalty_object(content, issuer=issuer)
    patch = {key: body[key] for key in ("loyaltyPoints", "accountName", "barcode", "textModulesData")}
    loyalty_object_patch(issuer, google.object_id(issuer, wallet_pass.pk), patch)


def passkit_serials_updated(*, device_library_identifier: str, pass_type_identifier: str, since: str | None):
    """Serial numbers of the device's passes changed after the `since` tag, and the new tag."""
    from django.conf import settings

    if not secrets.compare_digest(pass_type_identifier, settings.WALLET_APPLE_PASS_TYPE_ID or "\0"):
        return [], None
    with scopes_disabled():  # a device may hold passes of several shops
        passes = WalletPass.objects.filter(devices__device_library_identifier=device_library_identifier)
        if since:
            with contextlib.suppress(ValueError, OverflowError):
                passes = passes.filter(updated_at__gt=datetime.fromtimestamp(float(since), tz=UTC))
        rows = list(passes.values_list("pk", "updated_at"))
    if not rows:
        return [], None
    return sorted(pk for pk, _ in rows), f"{max(updated for _, updated in rows).timestamp():.6f}"
