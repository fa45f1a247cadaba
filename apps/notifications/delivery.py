"""The relay and the sender: claim due outbox rows, send each through its provider, record
what happened.

Claiming moves due `pending` rows (and `sending` rows whose lease ran out: their worker died)
to `sending` with a lease, under `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent relays never
claim the same row. A worker that dies between the provider's answer and the final update
leaves a `sending` row that is claimed again after its lease: the resend carries the same
Klaviyo `unique_id`, so Klaviyo records it once (E3). Every final update checks the lease the
worker holds, so a slow worker cannot overwrite a newer claim.
"""

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.tenancy import merchant_scope, scopes_disabled

from . import breakers
from .catalogue import CUSTOMER, TYPES
from .models import Channel, Notification, NotificationPreference, NotificationSettings, State
from .providers import SENDERS, OutboundMessage, ProviderError
from .rendering import render

logger = logging.getLogger(__name__)

SUBSCRIBED = "subscribed"  # the only Shopify marketing consent state that allows sending


def notifications_claim(*, limit: int | None = None) -> list[str]:
    """Claim due notifications across merchants (beat and kicks); returns their ids."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS)
    with scopes_disabled(), transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(Q(state=State.PENDING, next_attempt_at__lte=now) | Q(state=State.SENDING, lease_until__lt=now))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[: limit or settings.NOTIFICATIONS_RELAY_BATCH_SIZE]
        )
        if ids:
            Notification.objects.filter(pk__in=ids).update(state=State.SENDING, lease_until=lease_until, updated_at=now)
    return ids


def notifications_release(*, notification_ids: list[str]) -> int:
    """Give claimed notifications back (their send task could not be queued)."""
    with scopes_disabled():
        return Notification.objects.filter(pk__in=notification_ids, state=State.SENDING).update(
            state=State.PENDING, lease_until=None, updated_at=timezone.now()
        )


def next_pending_at(*, notification_ids: list[str]) -> datetime | None:
    """When the earliest of these notifications that wait for a retry becomes due."""
    with scopes_disabled():
        return (
            Notification.objects.filter(pk__in=notification_ids, state=State.PENDING)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )


def backoff_seconds(attempts: int) -> float:
    """Full jitter: uniform in [0, base * 2**(attempts-1)], capped (E2)."""
    ceiling = min(
        settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS,
        settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1),
    )
    return random.uniform(0, ceiling)  # noqa: S311  (jitter, not security)


def _skip_reason(notification: Notification, switched_off: set[tuple[str, str, str]]) -> str:
    """Why this notification must not be sent, or ""."""
    if (notification.merchant_id, notification.type, notification.channel) in switched_off:
        return "switched off by the merchant"
    if TYPES.get(notification.type) is None:
        return "unknown notification type"
    customer = notification.customer
    if TYPES[notification.type].audience == CUSTOMER:
        if customer is None or customer.redacted_at is not None:
            return "no recipient"
        if notification.channel == Channel.EMAIL:
            if customer.email_marketing_consent != SUBSCRIBED:
                return "no email marketing consent"
            if not customer.email:
                return "no email address"
        if notification.channel == Channel.SMS:
            if customer.sms_marketing_consent != SUBSCRIBED:
                return "no SMS marketing consent"
            if not customer.phone:
                return "no phone number"
    elif (
        notification.staff_id is not None
        and notification.channel == Channel.EMAIL
        and (not notification.staff.is_active or not notification.staff.email)
    ):
        return "no email address"
    return ""


def outbound_message(notification: Notification) -> OutboundMessage:
    rendered = render(
        type_key=notification.type,
        context=notification.context,
        locale=notification.locale,
        merchant_locale=notification.merchant.primary_locale,
    )
    notification.rendered_locale = rendered.locale
    notification.locale_fallback = rendered.fallback
    customer, staff = notification.customer, notification.staff
    return OutboundMessage(
        notification_id=notification.pk,
        merchant_id=notification.merchant_id,
        type=notification.type,
        locale=rendered.locale,
        direction=rendered.direction,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        email=(customer.email if customer else staff.email if staff else ""),
        phone=(customer.phone if customer else ""),
        external_id=(customer.shopify_customer_id if customer else ""),
        properties={"shop": notification.merchant.shop_domain},
    )


def _finish(notification: Notification, **fields) -> bool:
    """Write the outcome if this worker still holds the claim."""
    fields.setdefault("lease_until", None)
    fields["updated_at"] = timezone.now()
    with scopes_disabled():
        return bool(
            Notification.objects.filter(
                pk=notification.pk, state=State.SENDING, lease_until=notification.lease_until
            ).update(**fields)
        )


def notification_deliver(*, notification_id: str) -> str | None:
    """Send one claimed notification; see `notifications_deliver`."""
    return notifications_deliver(notification_ids=[notification_id]).get(notification_id)


def notifications_deliver(*, notification_ids: list[str]) -> dict[str, str]:
    """Send claimed notifications one by one; returns each one's new state (absent: no longer
    ours to send). `pending` means it waits (a retry later, or an open breaker).

    The rows, the merchants' credentials and switched-off types are loaded once per chunk."""
    with scopes_disabled():
        rows = {
            row.pk: row
            for row in Notification.objects.select_related("merchant", "customer", "staff").filter(
                pk__in=notification_ids, state=State.SENDING
            )
        }
        merchant_ids = {row.merchant_id for row in rows.values()}
        credentials = {
            row.merchant_id: row for row in NotificationSettings.objects.filter(merchant_id__in=merchant_ids)
        }
        switched_off = set(
            NotificationPreference.objects.filter(merchant_id__in=merchant_ids, enabled=False).values_list(
                "merchant_id", "type", "channel"
            )
        )
    return {
        notification_id: _deliver(
            rows[notification_id], credentials.get(rows[notification_id].merchant_id), switched_off
        )
        for notification_id in notification_ids
        if notification_id in rows
    }


def _deliver(notification: Notification, merchant_settings, switched_off) -> str:
    with merchant_scope(notification.merchant):
        reason = _skip_reason(notification, switched_off)
        if reason:
            _finish(notification, state=State.SKIPPED, last_error=reason)
            return State.SKIPPED
        sender = SENDERS[notification.provider]
        try:
            credential = sender.credential(notification=notification, merchant_settings=merchant_settings)
            message = outbound_message(notification)
        except ProviderError as exc:
            # Not connected: nothing a retry can fix until the merchant connects the provider.
            _finish(notification, state=State.FAILED, last_error=exc.reason, attempts=notification.attempts)
            return State.FAILED
        rendered = {"rendered_locale": notification.rendered_locale, "locale_fallback": notification.locale_fallback}
        try:
            message_id = breakers.guarded_call(
                provider=notification.provider,
                credential_key=credential.breaker_key,
                call=lambda: sender.send(message, credential),
            )
        except breakers.CircuitOpen:
            return _wait_for_breaker(notification, credential.breaker_key, rendered)
        except ProviderError as exc:
            return _record_failure(notification, exc, rendered)
    _finish(
        notification,
        state=State.SENT,
        attempts=notification.attempts + 1,
        provider_message_id=message_id or "",
        last_error="",
        sent_at=timezone.now(),
        **rendered,
    )
    return State.SENT


def _wait_for_breaker(notification: Notification, credential_key: str, rendered: dict) -> str:
    """No call was made: wait for the breaker to half-open, without using an attempt (E4)."""
    now = timezone.now()
    due = breakers.reopens_at(provider=notification.provider, credential_key=credential_key) or now
    due = max(due, now + timedelta(seconds=1))
    _finish(
        notification,
        state=State.PENDING,
        next_attempt_at=due,
        last_error=f"circuit open for {notification.provider}: waiting",
        **rendered,
    )
    return State.PENDING


def _record_failure(notification: Notification, exc: ProviderError, rendered: dict) -> str:
    attempts = notification.attempts + 1
    if not exc.retryable or attempts > settings.NOTIFICATIONS_MAX_RETRIES:
        _finish(notification, state=State.FAILED, attempts=attempts, last_error=exc.reason, **rendered)
        logger.warning(
            "notification %s (%s via %s) failed after %s attempts: %s",
            notification.pk,
            notification.type,
            notification.provider,
            attempts,
            exc.reason,
        )
        return State.FAILED
    delay = exc.retry_after if exc.retry_after is not None else backoff_seconds(attempts)
    _finish(
        notification,
        state=State.PENDING,
        attempts=attempts,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        last_error=exc.reason,
        **rendered,
    )
    return State.PENDING
