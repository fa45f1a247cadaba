"""The webhook inbox: store a verified delivery (A2, A3), process it with its topic's handler,
retry what a retry can fix, and leave poison messages `failed` with the reason (E1).

States: `received` → `processed` | `skipped` (older than what we hold, or nothing to do) |
`failed` (the reason is in `last_error`; staff can reprocess from admin).
"""

import hashlib
import json
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.tenancy import merchant_scope, scopes_disabled

from ..graphql import ShopifyError
from ..models import WebhookDelivery, WebhookStatus
from .handlers import HANDLERS
from .orders import OrderNotYetKnown
from .payloads import PayloadInvalid, timestamp

logger = logging.getLogger(__name__)

# Failures a later attempt can fix: the database or Redis blinked, a lock timed out, a refund
# arrived before its order, Shopify answered 5xx.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, IntegrityError, redis.RedisError, OrderNotYetKnown)


class DeliveryRetry(Exception):
    """Raised by `webhook_delivery_process` when the task should try again later."""


@dataclass(frozen=True)
class ReceivedDelivery:
    delivery_id: str
    created: bool  # False: the same webhook id was already in the inbox (a redelivery)
    status: str
    malformed: bool = False  # the body is not a JSON object (stored `failed`)


@dataclass(frozen=True)
class DeliveryHeaders:
    topic: str
    webhook_id: str
    event_id: str
    triggered_at: datetime | None
    api_version: str


def _webhook_id(headers: DeliveryHeaders, raw_body: bytes) -> str:
    if headers.webhook_id:
        return headers.webhook_id[:128]
    # Shopify always sends one; without it, identical bodies of one topic count as one delivery.
    digest = hashlib.sha256(headers.topic.encode() + b"\0" + raw_body).hexdigest()
    return f"sha256:{digest}"[:128]


def webhook_delivery_receive(*, merchant, headers: DeliveryHeaders, raw_body: bytes) -> ReceivedDelivery:
    """Store a verified delivery in the inbox, once per webhook id. Nothing else happens here.

    A body that is not a JSON object is stored `failed` with the reason (it is never retried).
    Database errors propagate: the view answers 5xx and Shopify delivers again (E6).
    """
    reason = ""
    try:
        body = json.loads(raw_body)
        if not isinstance(body, dict):
            reason = "payload is not a JSON object"
    except (ValueError, UnicodeDecodeError) as exc:
        reason = f"payload is not valid JSON ({type(exc).__name__})"
        body = None
    if reason:
        # Kept for staff to look at; scrubbed by customers/redact like any body.
        body = {"unparsed": raw_body[:20000].decode("utf-8", errors="replace")}
    triggered_at = headers.triggered_at
    delivery = WebhookDelivery(
        merchant=merchant,
        webhook_id=_webhook_id(headers, raw_body),
        event_id=headers.event_id[:128],
        topic=headers.topic[:64],
        api_version=headers.api_version[:16],
        triggered_at=triggered_at,
        body=body,
        status=WebhookStatus.FAILED if reason else WebhookStatus.RECEIVED,
        last_error=reason,
    )
    if not reason and delivery.topic not in HANDLERS:
        delivery.status, delivery.last_error = WebhookStatus.FAILED, "no handler for this topic"
    with merchant_scope(merchant):
        try:
            with transaction.atomic():
                delivery.save(force_insert=True)
        except IntegrityError:
            existing = WebhookDelivery.objects.filter(merchant=merchant, webhook_id=delivery.webhook_id).first()
            if existing is None:
                raise
            return ReceivedDelivery(delivery_id=existing.pk, created=False, status=existing.status)
        except DataError:
            # JSON PostgreSQL cannot store (a \u0000 in a string): keep the fact, not the body.
            delivery.body = {}
            delivery.status, delivery.last_error = WebhookStatus.FAILED, "payload cannot be stored (invalid characters)"
            with transaction.atomic():
                delivery.save(force_insert=True)
    return ReceivedDelivery(delivery_id=delivery.pk, created=True, status=delivery.status, malformed=bool(reason))


def parse_triggered_at(value: str) -> datetime | None:
    try:
        return timestamp(value, field="triggered_at")
    except PayloadInvalid:
        return None


def _failure_reason(exc: BaseException) -> str:
    """What went wrong, for admin: the error type and where — never values from the payload."""
    if isinstance(exc, PayloadInvalid):
        return f"invalid payload: {exc.reason}"[:500]
    if isinstance(exc, ShopifyError):
        return f"{type(exc).__name__}: {exc.code}"[:500]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 2)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"[:500]


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ShopifyError):
        return exc.retryable
    return isinstance(exc, TRANSIENT_ERRORS)


def webhook_delivery_process(*, merchant, delivery_id: str) -> str | None:
    """Run the topic's handler on one `received` delivery, in one transaction with its status.

    Returns the new status, or None when the delivery is not pending (already done, or being
    processed by another worker right now). Raises DeliveryRetry when a retry can help and
    attempts remain; otherwise the delivery ends `failed` with the reason.
    """
    with merchant_scope(merchant):
        try:
            with transaction.atomic():
                delivery = (
                    WebhookDelivery.objects.select_for_update(skip_locked=True)
                    .filter(merchant=merchant, pk=delivery_id, status=WebhookStatus.RECEIVED)
                    .first()
                )
                if delivery is None:
                    return None
                handler = HANDLERS.get(delivery.topic)
                if handler is None:
                    raise PayloadInvalid("no handler for this topic")
                status = handler(merchant=merchant, delivery=delivery)
                WebhookDelivery.objects.filter(pk=delivery.pk).update(
                    status=status,
                    attempts=F("attempts") + 1,
                    last_error="",
                    processed_at=timezone.now(),
                )
                return status
        except Exception as exc:
            reason = _failure_reason(exc)
            return _record_failure(
                merchant=merchant, delivery_id=delivery_id, reason=reason, transient=_is_transient(exc), exc=exc
            )


def _record_failure(*, merchant, delivery_id: str, reason: str, transient: bool, exc: BaseException) -> str:
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(merchant=merchant, pk=delivery_id).first()
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.last_error = reason
        final = not transient or delivery.attempts >= settings.SHOPIFY_WEBHOOK_MAX_ATTEMPTS
        if final:
            delivery.status = WebhookStatus.FAILED
            delivery.processed_at = timezone.now()
        delivery.save(update_fields=["attempts", "last_error", "status", "processed_at"])
    if final:
        logger.warning(
            "webhook %s (%s) failed after %s attempts: %s", delivery.pk, delivery.topic, delivery.attempts, reason
        )
        return WebhookStatus.FAILED
    raise DeliveryRetry(reason) from exc


def webhook_delivery_reprocess(*, merchant, delivery_id: str, actor=None) -> bool:
    """Put a failed or skipped delivery back to `received` (admin action); the caller enqueues it."""
    from apps.core.audit import audit_record

    with merchant_scope(merchant), transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(merchant=merchant, pk=delivery_id).first()
        if delivery is None or delivery.status == WebhookStatus.RECEIVED:
            return False
        previous = delivery.status
        delivery.status = WebhookStatus.RECEIVED
        delivery.attempts = 0
        delivery.last_error = ""
        delivery.processed_at = None
        delivery.save(update_fields=["status", "attempts", "last_error", "processed_at"])
        audit_record(
            merchant=merchant,
            actor=actor,
            action="webhook_reprocessed",
            target=delivery,
            metadata={"topic": delivery.topic, "previous_status": previous},
        )
    return True


def webhook_inbox_stale_list(*, older_than: timedelta, limit: int = 1000) -> list[tuple[str, str]]:
    """(merchant id, delivery id) of deliveries still `received` after `older_than` — their
    task was never queued (broker down) or was lost. Across merchants: run by beat."""
    cutoff = timezone.now() - older_than
    with scopes_disabled():
        return list(
            WebhookDelivery.objects.filter(status=WebhookStatus.RECEIVED, received_at__lt=cutoff)
            .order_by("received_at")
            .values_list("merchant_id", "pk")[:limit]
        )
