"""Writes of the merchant referral program: links, clicks, attribution, completion, expiry.

Rewards are granted in `rewards.py`. Every write audits inside its transaction; streams,
PostHog, tasks and the outbox kick happen after commit.
"""

import hashlib
import hmac
import logging
import re
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import ApplicationError, NotFound
from apps.core.models import Merchant, StaffMember, StaffRole
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.services import referral_code_new
from apps.core.streams import stream_append_on_commit
from apps.core.tenancy import merchant_scope, scopes_disabled
from apps.core.tracking import track_on_commit
from apps.notifications.models import NotificationSettings
from apps.notifications.services import notify

from .catalogue import per_locale, referral_url, reward_label, status_label
from .models import (
    MerchantReferral,
    MerchantReferralClick,
    MerchantReferralDaily,
    MerchantReferralLink,
    MerchantReferralOwner,
    ReferralStatus,
)

logger = logging.getLogger(__name__)

CODE_PREFIX = "MER"
CODE_ATTEMPTS = 5
CODE_INPUT = re.compile(r"^[A-Za-z0-9]{4,32}$")
TOKEN_SALT = "merchant-referrals.code"  # noqa: S105  (a signing namespace, not a secret)
# Link previews, crawlers and scripts do not count as visitors.
BOT_USER_AGENT = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|embedly|whatsapp|telegram|skype|"
    r"curl|wget|python-|httpx|go-http|java/|okhttp|headless|lighthouse|monitor|scan",
    re.IGNORECASE,
)


class SelfReferralRefused(ApplicationError):
    code = "self_referral"
    status = 422
    default_message = _("A store cannot use its own referral link.")


class SameOwnerRefused(ApplicationError):
    code = "same_owner_referral"
    status = 422
    default_message = _("Stores of the same owner cannot refer each other.")


class NotEligible(ApplicationError):
    code = "referral_not_eligible"
    status = 422
    default_message = _("This store can no longer be referred.")


class InvalidTransition(ApplicationError):
    code = "invalid_referral_transition"
    status = 409
    default_message = _("The referral is not in a state that allows this.")


def merchant_referral_code_new() -> str:
    """`MER` and ten characters from the operating system's CSPRNG (see apps.core.services.referrals)."""
    return CODE_PREFIX + referral_code_new()


# --- Links -----------------------------------------------------------------------------------
@transaction.atomic
def merchant_referral_link_create(
    *, merchant, actor=None, locale: str = "en", generate_code=merchant_referral_code_new
) -> tuple[MerchantReferralLink, bool]:
    """Return the advocate's active referral link, creating it (unique code) on first call."""
    Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
    link = MerchantReferralLink.objects.filter(merchant=merchant, is_active=True).first()
    if link is not None:
        return link, False
    for _attempt in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                link = MerchantReferralLink.objects.create(
                    merchant=merchant,
                    code=generate_code(),
                    reward_id=settings.MERCHANT_REFERRALS_ADVOCATE_REWARD,
                    locale=locale,
                )
            break
        except IntegrityError:
            continue  # the code is taken (unique across every shop): draw another
    else:
        raise RuntimeError("no unused merchant referral code after several draws")
    audit_record(
        merchant=merchant,
        actor=actor,
        action="merchant_referral_created",
        target=link,
        metadata={"referral_code": link.code, "reward": link.reward_id},
    )
    stream_append_on_commit(
        merchant_id=merchant.pk,
        key=f"merchant_referral:{link.code}",
        data={
            "referral_code": link.code,
            "url": referral_url(link.code),
            "reward_id": link.reward_id,
            "status": "active",
        },
    )
    track_on_commit(
        "merchant_referral_created",
        merchant=merchant,
        distinct_id=getattr(actor, "pk", None) or merchant.pk,
        properties={"reward_id": link.reward_id},
    )
    from .tasks import merchant_referral_metafield_task, shop_owner_refresh_task

    # Queued only if the broker answers: a dead broker must not fail the request after its commit.
    # A skipped owner refresh is redone before completion (the owners are checked again there); a
    # skipped metafield write waits for the next change of the link (logged by the enqueue helper).
    transaction.on_commit(
        lambda: enqueue_unless_broker_down(merchant_referral_metafield_task, kwargs={"merchant_id": merchant.pk})
    )
    transaction.on_commit(
        lambda: enqueue_unless_broker_down(shop_owner_refresh_task, kwargs={"merchant_id": merchant.pk})
    )
    return link, True


def link_get_by_code(code: str) -> MerchantReferralLink | None:
    """An active link by code, across every shop (codes are global)."""
    code = (code or "").strip().upper()
    if not CODE_INPUT.match(code):
        return None
    with scopes_disabled():
        return MerchantReferralLink.objects.select_related("merchant").filter(code=code, is_active=True).first()


# --- Clicks ----------------------------------------------------------------------------------
def visitor_hash(*, address: str, user_agent: str) -> str:
    """A keyed hash of the visitor's address and browser: one visitor per day, no IP stored."""
    message = f"{address}|{user_agent}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def is_bot(user_agent: str) -> bool:
    return not user_agent.strip() or bool(BOT_USER_AGENT.search(user_agent))


def _daily_add(*, merchant_id: str, day, clicks: int = 0, conversions: int = 0) -> None:
    """Add to the advocate's daily counters (row created on the day's first event)."""
    changes = {"clicks": F("clicks") + clicks, "conversions": F("conversions") + conversions}
    if MerchantReferralDaily.objects.filter(merchant_id=merchant_id, day=day).update(**changes):
        return
    try:
        with transaction.atomic():
            MerchantReferralDaily.objects.create(
                merchant_id=merchant_id, day=day, clicks=clicks, conversions=conversions
            )
    except IntegrityError:
        MerchantReferralDaily.objects.filter(merchant_id=merchant_id, day=day).update(**changes)


def merchant_referral_click_record(*, link, address: str, user_agent: str, now=None) -> bool:
    """Count a click on the link: bots never, a visitor once a day. Returns whether it counted."""
    if is_bot(user_agent):
        return False
    now = now or timezone.now()
    day = now.date()
    with merchant_scope(link.merchant_id), transaction.atomic():
        try:
            with transaction.atomic():
                MerchantReferralClick.objects.create(
                    merchant_id=link.merchant_id,
                    link=link,
                    visitor_hash=visitor_hash(address=address, user_agent=user_agent),
                    clicked_date=day,
                    clicked_at=now,
                )
        except IntegrityError:
            return False
        _daily_add(merchant_id=link.merchant_id, day=day, clicks=1)
    return True


def referral_token(code: str) -> str:
    """The code signed with the click time: carried by the cookie and the listing URL."""
    return signing.TimestampSigner(salt=TOKEN_SALT).sign(code)


def referral_token_code(token: str) -> str | None:
    """The code of a token younger than the attribution window; None otherwise."""
    try:
        return signing.TimestampSigner(salt=TOKEN_SALT).unsign(
            token, max_age=timedelta(days=settings.MERCHANT_REFERRALS_ATTRIBUTION_DAYS)
        )
    except signing.BadSignature:
        return None


# --- Attribution -------------------------------------------------------------------------------
def _owners_match(advocate_id: str, referred_id: str) -> bool:
    with scopes_disabled():
        hashes = dict(
            MerchantReferralOwner.objects.filter(merchant_id__in=[advocate_id, referred_id]).values_list(
                "merchant_id", "owner_hash"
            )
        )
    advocate, referred = hashes.get(advocate_id), hashes.get(referred_id)
    return bool(advocate and referred and advocate == referred)


def _owners_known(*merchant_ids: str) -> bool:
    with scopes_disabled():
        return MerchantReferralOwner.objects.filter(merchant_id__in=merchant_ids).count() == len(set(merchant_ids))


class _Refusal(Exception):
    def __init__(self, link, reason: str, error: ApplicationError):
        super().__init__(reason)
        self.link, self.reason, self.error = link, reason, error


def merchant_referral_attribute(*, referred, code: str, now=None) -> MerchantReferral:
    """Make a freshly installed store a `pending` referral of the code's advocate.

    Refuses the advocate's own store and stores of the same owner (equal owner-email hashes),
    stores installed more than MERCHANT_REFERRALS_CLAIM_HOURS ago, and a second attribution
    (the first one stands: returned as is).
    """
    try:
        return _attribute(referred=referred, code=code, now=now or timezone.now())
    except _Refusal as refusal:
        # Recorded on the referred store's trail, outside the rolled-back attempt.
        with merchant_scope(referred), transaction.atomic():
            audit_record(
                merchant=referred,
                action="merchant_referral_refused",
                target=refusal.link,
                metadata={
                    "referral_code": refusal.link.code,
                    "reason": refusal.reason,
                    "advocate_merchant_id": refusal.link.merchant_id,
                },
            )
        raise refusal.error from None


@transaction.atomic
def _attribute(*, referred, code: str, now) -> MerchantReferral:
    link = link_get_by_code(code)
    if link is None:
        raise NotFound(_("This referral code is not valid."))
    referred = Merchant.objects.select_for_update().get(pk=referred.pk)
    with scopes_disabled():
        existing = MerchantReferral.objects.filter(referred_merchant=referred).first()
    if existing is not None:
        return existing
    if link.merchant_id == referred.pk:
        raise _Refusal(link, "self_referral", SelfReferralRefused())
    if _owners_match(link.merchant_id, referred.pk):
        raise _Refusal(link, "same_owner", SameOwnerRefused())
    claim_window = timedelta(hours=settings.MERCHANT_REFERRALS_CLAIM_HOURS)
    if not referred.is_installed or referred.installed_at is None or referred.installed_at < now - claim_window:
        raise NotEligible()
    advocate = link.merchant
    with merchant_scope(advocate):
        referral = MerchantReferral.objects.create(
            merchant=advocate,
            referred_merchant=referred,
            link=link,
            code=link.code,
            reward_id=link.reward_id,
            status=ReferralStatus.PENDING,
        )
        _daily_add(merchant_id=advocate.pk, day=now.date(), conversions=1)
        audit_record(
            merchant=advocate,
            action="merchant_referral_pending",
            target=referral,
            metadata={"merchant_referral_id": referral.pk, "referred_merchant_id": referred.pk},
        )
        _after_change(referral, event="pending")
    return referral


# --- State changes -------------------------------------------------------------------------------
def _owner_staff(merchant) -> StaffMember | None:
    return (
        StaffMember.objects.filter(merchant=merchant, role=StaffRole.OWNER, is_active=True)
        .order_by("created_at")
        .first()
    )


def slack_configured(*, merchant) -> bool:
    row = NotificationSettings.objects.filter(merchant=merchant).first()
    return row is not None and bool(row.slack_webhook_url or row.slack_channel_id)


def _after_change(referral: MerchantReferral, *, event: str, reward_status: str = "") -> None:
    """Stream the new state, track it and notify the advocate (in its scope and transaction)."""
    advocate = referral.merchant
    referred_shop = referral.referred_merchant.shop_domain
    stream_append_on_commit(
        merchant_id=advocate.pk,
        key=f"merchant_referral:{referral.code}",
        data={
            "merchant_referral_id": referral.pk,
            "referral_code": referral.code,
            "referred_merchant_id": referral.referred_merchant_id,
            "status": referral.status,
            "reward_id": referral.reward_id,
            "event": event,
        },
    )
    track_on_commit(f"merchant_referral_{event}", merchant=advocate, distinct_id=advocate.pk)
    reward = per_locale(reward_label(referral.reward_id))
    staff = _owner_staff(advocate)
    status = per_locale(_("Reward applied")) if event == "reward_applied" else per_locale(status_label(referral.status))
    if staff is not None:
        notify(
            merchant=advocate,
            type="merchant_referral_status",
            idempotency_key=f"merchant_referral:{referral.pk}:{event}",
            staff=staff,
            context={"referred_shop": referred_shop, "status": status, "reward": reward},
        )
    if event == "completed" and slack_configured(merchant=advocate):
        notify(
            merchant=advocate,
            type="referral_completed",
            idempotency_key=f"merchant_referral:{referral.pk}:completed:slack",
            context={"referred_shop": referred_shop, "reward": reward},
        )


def _locked(referral_id: str, merchant_id: str) -> MerchantReferral:
    return (
        MerchantReferral.objects.select_for_update()
        .select_related("merchant", "referred_merchant")
        .get(pk=referral_id, merchant_id=merchant_id)
    )


@transaction.atomic
def merchant_referral_complete(*, referral, actor=None, now=None) -> MerchantReferral:
    """Complete a referral and grant its rewards (once). Staff may complete an expired one."""
    from .rewards import merchant_referral_rewards_grant

    now = now or timezone.now()
    with merchant_scope(referral.merchant_id):
        referral = _locked(referral.pk, referral.merchant_id)
        if referral.status == ReferralStatus.COMPLETED:
            return referral
        if referral.status == ReferralStatus.EXPIRED and actor is None:
            raise InvalidTransition()
        previous = referral.status
        referral.status = ReferralStatus.COMPLETED
        referral.completed_at = now
        referral.save(update_fields=["status", "completed_at"])
        audit_record(
            merchant=referral.merchant,
            actor=actor,
            action="merchant_referral_completed",
            target=referral,
            metadata={"merchant_referral_id": referral.pk, "reward": referral.reward_id, "previous": previous},
        )
        merchant_referral_rewards_grant(referral=referral, actor=actor)
        _after_change(referral, event="completed")
    return referral


@transaction.atomic
def merchant_referral_expire(*, referral, reason: str, actor=None, now=None) -> MerchantReferral:
    """Expire a pending referral (window passed, store gone, same owner, or by staff)."""
    with merchant_scope(referral.merchant_id):
        referral = _locked(referral.pk, referral.merchant_id)
        if referral.status != ReferralStatus.PENDING:
            raise InvalidTransition()
        referral.status = ReferralStatus.EXPIRED
        referral.expired_at = now or timezone.now()
        referral.expired_reason = reason
        referral.save(update_fields=["status", "expired_at", "expired_reason"])
        audit_record(
            merchant=referral.merchant,
            actor=actor,
            action="merchant_referral_expired",
            target=referral,
            metadata={"merchant_referral_id": referral.pk, "reason": reason},
        )
        _after_change(referral, event="expired")
    return referral


def qualifies(referral: MerchantReferral) -> bool:
    """Installed ever since the referral began (an uninstall or a reinstall breaks the run)."""
    referred = referral.referred_merchant
    return bool(referred.is_installed and referred.installed_at and referred.installed_at <= referral.created_at)


def merchant_referrals_advance(*, now=None, refresh_owner=None) -> dict:
    """Beat: expire pending referrals whose store left (uninstalled, or reinstalled: the run is
    broken and can never qualify), complete those installed for the qualifying period, and
    expire those still undecided at the end of the window.

    Before completing, both owners must be known and different (`refresh_owner(merchant)` reads
    a missing one from Shopify; when Shopify cannot say, the referral waits for the next run)."""
    from .shopify_api import shop_owner_refresh

    refresh_owner = refresh_owner or (lambda merchant: shop_owner_refresh(merchant=merchant))
    now = now or timezone.now()
    qualified_before = now - timedelta(days=settings.MERCHANT_REFERRALS_QUALIFYING_DAYS)
    window_before = now - timedelta(days=settings.MERCHANT_REFERRALS_COMPLETION_WINDOW_DAYS)
    report = {"completed": 0, "expired": 0, "waiting": 0}
    with scopes_disabled():
        pending = MerchantReferral.objects.filter(status=ReferralStatus.PENDING).select_related(
            "merchant", "referred_merchant"
        )
        broken = list(
            pending.filter(
                Q(referred_merchant__is_installed=False) | Q(referred_merchant__installed_at__gt=F("created_at"))
            )[:1000]
        )
        due = list(pending.filter(created_at__lte=qualified_before).order_by("created_at")[:1000])
    for referral in broken:
        try:
            merchant_referral_expire(referral=referral, reason="uninstalled", now=now)
            report["expired"] += 1
        except InvalidTransition:
            continue
    for referral in due:
        if referral in broken:
            continue
        try:
            for merchant in (referral.merchant, referral.referred_merchant):
                if not _owners_known(merchant.pk):
                    refresh_owner(merchant)
            if not _owners_known(referral.merchant_id, referral.referred_merchant_id):
                if referral.created_at <= window_before:
                    merchant_referral_expire(referral=referral, reason="window", now=now)
                    report["expired"] += 1
                else:
                    report["waiting"] += 1
            elif _owners_match(referral.merchant_id, referral.referred_merchant_id):
                merchant_referral_expire(referral=referral, reason="same_owner", now=now)
                report["expired"] += 1
            else:
                merchant_referral_complete(referral=referral, now=now)
                report["completed"] += 1
        except InvalidTransition:
            continue  # changed by staff meanwhile
    return report
