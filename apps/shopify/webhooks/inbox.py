"""The webhook inbox: store a verified delivery (A2, A3), process it with its topic's handler,
retry what a retry can fix, and leave poison messages `failed` with the reason (E1).

States: `received` → `processed` | `skipped` (older than what we hold, or nothing to do) |
`failed` (the reason is in `last_error`; staff can reprocess from admin).
"""

import hashlib
import json
import logging
import random
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from apps.core.tenancy import merchant_scope, scopes_disabled

from ..graphql import ShopifyError
from ..models import WebhookDelivery, WebhookStatus
from .handlers import HANDLERS
from .orders import OrderNotYetKnown, order_update_parse, orders_sync
from .payloads import PayloadInvalid, timestamp

logger = logging.getLogger(__name__)

# Failures a later attempt can fix: the database or Redis blinked, a lock timed out, a refund
# arrived before its order, Shopify answered 5xx.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, IntegrityError, redis.RedisError, OrderNotYetKnown)


# Topics whose deliveries a drain applies together, set-wise (`orders_sync`).
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid", "orders/cancelled"})


class DeliveryRetry(Exception):
    """Raised by `webhook_delivery_process` when the delivery should be tried again in `delay` s."""

    def __init__(self, reason: str, delay: float):
        super().__init__(reason)
        self.delay = delay


def retry_delay(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 2, 4, 8… seconds after attempt 1, 2, 3…,
    at most 5 minutes."""
    return random.uniform(1, min(300, 2**attempt))  # noqa: S311  (jitter, not security)


@dataclass(frozen=True)
class InboxDrained:
    claimed: int  # deliveries taken (processed, skipped, failed or left for a retry)
    retry_in: float | None = None  # seconds until the earliest delivery left for a retry is due


@dataclass(frozen=True)
class ReceivedDelivery:
    pending: bool  # stored `received` (or already in the inbox): the inbox needs draining
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


def webhook_delivery_receive(*, merchant_id: str, headers: DeliveryHeaders, raw_body: bytes) -> ReceivedDelivery:
    """Store a verified delivery in the inbox, once per webhook id. Nothing else happens here.

    One `INSERT … ON CONFLICT DO NOTHING` in autocommit: a redelivery of the same webhook id
    leaves the stored row as it is. A body that is not a JSON object is stored `failed` with the
    reason (it is never retried). Database errors propagate: the view answers 5xx and Shopify
    delivers again (E6); an IntegrityError means the merchant row is gone.
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
    delivery = WebhookDelivery(
        merchant_id=merchant_id,
        webhook_id=_webhook_id(headers, raw_body),
        event_id=headers.event_id[:128],
        topic=headers.topic[:64],
        api_version=headers.api_version[:16],
        triggered_at=headers.triggered_at,
        body=body,
        status=WebhookStatus.FAILED if reason else WebhookStatus.RECEIVED,
        last_error=reason,
    )
    if not reason and delivery.topic not in HANDLERS:
        delivery.status, delivery.last_error = WebhookStatus.FAILED, "no handler for this topic"
    if reason:
        with scopes_disabled():
            # Answered 400 the first time only: a redelivery of the same bad body gets 200, so
            # Shopify stops sending what can never be processed.
            seen = WebhookDelivery.objects.filter(merchant_id=merchant_id, webhook_id=delivery.webhook_id).exists()
        if seen:
            return ReceivedDelivery(pending=False)
    try:
        _insert_once(delivery)
    except DataError:
        # JSON PostgreSQL cannot store (a \u0000 in a string): keep the fact, not the body.
        delivery.body = {}
        delivery.status, delivery.last_error = WebhookStatus.FAILED, "payload cannot be stored (invalid characters)"
        _insert_once(delivery)
    return ReceivedDelivery(pending=delivery.status == WebhookStatus.RECEIVED, malformed=bool(reason))


def _insert_once(delivery: WebhookDelivery) -> None:
    """`INSERT … ON CONFLICT DO NOTHING` as one autocommitted statement. `bulk_create` would wrap
    it in BEGIN/COMMIT (two more round trips on the hottest path), so this calls the manager's
    `_insert` — the same internal API `bulk_create(ignore_conflicts=True)` uses."""
    fields = list(WebhookDelivery._meta.concrete_fields)
    with scopes_disabled():
        if connection.in_atomic_block:
            # Inside a caller's transaction (tests, tools) a failed INSERT must not abort it.
            with transaction.atomic():
                WebhookDelivery.objects._insert([delivery], fields=fields, on_conflict=OnConflict.IGNORE)
        else:
            WebhookDelivery.objects._insert([delivery], fields=fields, on_conflict=OnConflict.IGNORE)


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
                    retry_at=None,
                )
                return status
        except SoftTimeLimitExceeded:
            raise  # the task's time is up, not the delivery's: rolled back, still `received`
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
        delay = retry_delay(delivery.attempts)
        if final:
            delivery.status = WebhookStatus.FAILED
            delivery.processed_at = timezone.now()
            delivery.retry_at = None
        else:
            delivery.retry_at = timezone.now() + timedelta(seconds=delay)
        delivery.save(update_fields=["attempts", "last_error", "status", "processed_at", "retry_at"])
    if final:
        logger.warning(
            "webhook %s (%s) failed after %s attempts: %s", delivery.pk, delivery.topic, delivery.attempts, reason
        )
        return WebhookStatus.FAILED
    raise DeliveryRetry(reason, delay) from exc


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
        delivery.retry_at = None
        delivery.save(update_fields=["status", "attempts", "last_error", "processed_at", "retry_at"])
        audit_record(
            merchant=merchant,
            actor=actor,
            action="webhook_reprocessed",
            target=delivery,
            metadata={"topic": delivery.topic, "previous_status": previous},
        )
    return True


def _due(now):
    return Q(status=WebhookStatus.RECEIVED) & (Q(retry_at__isnull=True) | Q(retry_at__lte=now))


def webhook_inbox_drain(*, merchant, limit: int) -> InboxDrained:
    """Process up to `limit` due deliveries of one shop, oldest first: the orders topics together
    in one transaction (`orders_sync`), the others one by one. When the batch transaction fails
    (a concurrent insert of the same order, a lock timeout…), its deliveries are processed one
    at a time instead, each with its own retry accounting."""
    with merchant_scope(merchant):
        due = list(
            WebhookDelivery.objects.filter(_due(timezone.now()), merchant=merchant)
            .order_by("received_at")
            .values_list("pk", "topic")[:limit]
        )
        orders = [pk for pk, topic in due if topic in ORDER_TOPICS]
        one_by_one = [pk for pk, topic in due if topic not in ORDER_TOPICS]
        if orders and not _orders_batch_process(merchant=merchant, delivery_ids=orders):
            one_by_one = orders + one_by_one
        delays = []
        for delivery_id in one_by_one:
            try:
                webhook_delivery_process(merchant=merchant, delivery_id=delivery_id)
            except DeliveryRetry as exc:
                delays.append(exc.delay)
    return InboxDrained(claimed=len(due), retry_in=min(delays, default=None))


def _orders_batch_process(*, merchant, delivery_ids: list[str]) -> bool:
    """Apply orders deliveries set-wise with their statuses, in one transaction. False (nothing
    written) when the batch as a whole failed."""
    try:
        with transaction.atomic():
            deliveries = list(
                WebhookDelivery.objects.select_for_update(skip_locked=True)
                .filter(merchant=merchant, pk__in=delivery_ids, status=WebhookStatus.RECEIVED)
                .order_by("received_at")
            )
            outcome: dict[tuple[str, str], list[str]] = {}
            parsed = []
            for delivery in deliveries:
                try:
                    parsed.append((delivery, order_update_parse(merchant=merchant, payload=delivery.body)))
                except PayloadInvalid as exc:
                    outcome.setdefault((WebhookStatus.FAILED, _failure_reason(exc)), []).append(delivery.pk)
            applied = orders_sync(merchant=merchant, updates=[update for _, update in parsed])
            for (delivery, _update), newer in zip(parsed, applied, strict=True):
                # Older than the stored order: nothing overwritten (points and refunds still settled).
                status = WebhookStatus.PROCESSED if newer else WebhookStatus.SKIPPED
                outcome.setdefault((status, ""), []).append(delivery.pk)
            now = timezone.now()
            for (status, reason), ids in outcome.items():
                WebhookDelivery.objects.filter(pk__in=ids).update(
                    status=status, attempts=F("attempts") + 1, last_error=reason, processed_at=now, retry_at=None
                )
                if status == WebhookStatus.FAILED:
                    logger.warning("%s orders webhooks failed: %s", len(ids), reason)
        return True
    except SoftTimeLimitExceeded:
        raise  # out of time: the batch is rolled back, its deliveries stay `received`
    except Exception as exc:
        logger.info("orders webhooks batch of %s taken one at a time: %s", len(delivery_ids), _failure_reason(exc))
        return False


def webhook_inbox_stale_list(*, older_than: timedelta, limit: int = 1000) -> list[tuple[str, str]]:
    """(merchant id, delivery id) of deliveries still `received` after `older_than` and due —
    their drain was never queued (broker down) or was lost. Across merchants: run by beat."""
    now = timezone.now()
    with scopes_disabled():
        return list(
            WebhookDelivery.objects.filter(_due(now), received_at__lt=now - older_than)
            .order_by("received_at")
            .values_list("merchant_id", "pk")[:limit]
        )
