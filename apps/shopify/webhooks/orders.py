"""Orders and customers from Shopify into the loyalty core: one idempotent handler for the
orders webhooks and for reconciliation (RELIABILITY A3–A5, C5).

`order_sync` upserts the order when the payload is newer than what we hold (A4: an older
`updated_at` never overwrites a newer one), records its refunds once per refund id, then
brings the order's points to the state the stored order calls for:
- paid and not cancelled → earn `points_for_amount(total)` once (`order:{id}:earn`);
- each refund → reverse its share of the earned points once (`order:{id}:refund:{refund id}`),
  rounded down; a refund that completes a full refund reverses what is left
  (`order:{id}:refund:full`);
- cancelled → reverse whatever is left of the earn once (`order:{id}:cancel`).
The steps read the stored order, not the payload, so deliveries in any order converge.
"""

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.db.models import Count, F, Max, Sum
from django.db.models.functions import Coalesce

from apps.core.locales import normalize_locale
from apps.core.models import Customer, Order, PointsTransaction, TransactionKind
from apps.core.services import points_earn, points_for_amount, points_reverse

from ..models import ShopifyRefund, WebhookDelivery, WebhookStatus
from .payloads import PayloadInvalid, money, optional_shopify_id, refund_amount, shopify_id, timestamp

PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
CUSTOMER_TOPICS = ("customers/create", "customers/update")


def earn_key(order: Order) -> str:
    return f"order:{order.shopify_order_id}:earn"


def _customer_for_order(*, merchant, payload: dict) -> Customer | None:
    """The order's customer, created bare when the order arrives before `customers/create`."""
    data = payload.get("customer")
    if not isinstance(data, dict):
        return None
    customer_id = optional_shopify_id(data.get("id"), field="customer.id")
    if customer_id is None:
        return None
    Customer.objects.bulk_create(
        [Customer(merchant=merchant, shopify_customer_id=customer_id)],
        ignore_conflicts=True,
    )
    return Customer.objects.get(merchant=merchant, shopify_customer_id=customer_id)


def _order_fields(payload: dict, merchant) -> dict:
    currency = str(payload.get("currency") or merchant.currency or "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise PayloadInvalid("currency is not an ISO 4217 code")
    return {
        "name": str(payload.get("name") or "")[:64],
        "total_price": money(payload.get("total_price"), field="total_price"),
        "currency": currency,
        "financial_status": str(payload.get("financial_status") or "")[:32],
        "processed_at": timestamp(payload.get("processed_at") or payload.get("created_at"), field="processed_at")
        or timestamp(payload.get("updated_at"), field="updated_at", required=True),
        "cancelled_at": timestamp(payload.get("cancelled_at"), field="cancelled_at"),
    }


def _order_upsert(*, merchant, payload: dict, customer: Customer | None) -> tuple[Order, bool]:
    """Insert or update the order under a row lock; returns (order, whether the payload applied)."""
    order_id = shopify_id(payload.get("id"), field="id")
    updated_at = timestamp(payload.get("updated_at"), field="updated_at", required=True)
    fields = _order_fields(payload, merchant)
    fresh = Order(
        merchant=merchant, shopify_order_id=order_id, customer=customer, shopify_updated_at=updated_at, **fields
    )
    Order.objects.bulk_create([fresh], ignore_conflicts=True)
    order = Order.objects.select_for_update().get(merchant=merchant, shopify_order_id=order_id)
    if order.pk == fresh.pk:
        return order, True
    if order.shopify_updated_at is not None and updated_at <= order.shopify_updated_at:
        if customer is not None and order.customer_id is None:
            order.customer = customer
            order.save(update_fields=["customer", "updated_at"])
        return order, False
    for name, value in fields.items():
        setattr(order, name, value)
    order.shopify_updated_at = updated_at
    if customer is not None:
        order.customer = customer
    order.refunded_amount = min(order.refunded_amount, order.total_price)
    order.save()
    return order, True


def _refunds_record(*, merchant, order: Order, refunds) -> None:
    if refunds is None:
        return
    if not isinstance(refunds, list):
        raise PayloadInvalid("refunds is not a list")
    rows = []
    for refund in refunds:
        if not isinstance(refund, dict):
            raise PayloadInvalid("refund is not an object")
        rows.append(
            ShopifyRefund(
                merchant=merchant,
                order=order,
                shopify_refund_id=shopify_id(refund.get("id"), field="refund id"),
                amount=refund_amount(refund),
                refunded_at=timestamp(
                    refund.get("created_at") or refund.get("processed_at"), field="refund created_at"
                ),
            )
        )
    if rows:
        ShopifyRefund.objects.bulk_create(rows, ignore_conflicts=True)
    total = ShopifyRefund.objects.filter(merchant=merchant, order=order).aggregate(total=Sum("amount"))["total"]
    refunded = min(total or Decimal("0"), order.total_price)
    if refunded != order.refunded_amount:
        order.refunded_amount = refunded
        order.save(update_fields=["refunded_amount", "updated_at"])


def _reversed_so_far(*, merchant, earn: PointsTransaction) -> int:
    return (
        PointsTransaction.objects.filter(merchant=merchant, reverses=earn).aggregate(total=Sum("reversed_amount"))[
            "total"
        ]
        or 0
    )


def _key_used(merchant, key: str) -> bool:
    return PointsTransaction.objects.filter(merchant=merchant, idempotency_key=key).exists()


def _reverse_once(*, merchant, earn: PointsTransaction, key: str, points: int | None, reason: str) -> None:
    if _key_used(merchant, key):
        return
    remaining = abs(earn.points) - _reversed_so_far(merchant=merchant, earn=earn)
    wanted = remaining if points is None else min(points, remaining)
    if wanted <= 0:
        return
    points_reverse(merchant=merchant, original=earn, idempotency_key=key, points=wanted, reason=reason)


def _points_apply(*, merchant, order: Order) -> None:
    """Bring the order's ledger entries to what the stored order calls for (each step once)."""
    if order.customer_id is None:
        return
    earn = PointsTransaction.objects.filter(merchant=merchant, idempotency_key=earn_key(order)).first()
    if earn is None and order.financial_status in PAID_STATUSES and order.cancelled_at is None:
        points = points_for_amount(merchant=merchant, amount=order.total_price)
        if points > 0:
            earn = points_earn(
                merchant=merchant,
                customer=order.customer,
                points=points,
                idempotency_key=earn_key(order),
                order=order,
                reason=f"Order {order.name or order.shopify_order_id}",
                metadata={"shopify_order_id": order.shopify_order_id, "amount": str(order.total_price)},
            ).transaction
    if earn is None or earn.kind != TransactionKind.EARN:
        return
    refunds = list(ShopifyRefund.objects.filter(merchant=merchant, order=order).order_by("refunded_at", "id"))
    for refund in refunds:
        share = 0
        if order.total_price > 0:
            share = int((Decimal(earn.points) * refund.amount / order.total_price).to_integral_value(ROUND_FLOOR))
        _reverse_once(
            merchant=merchant,
            earn=earn,
            key=f"order:{order.shopify_order_id}:refund:{refund.shopify_refund_id}",
            points=share,
            reason=f"Refund {refund.shopify_refund_id}",
        )
    if refunds and order.refunded_amount >= order.total_price:
        _reverse_once(
            merchant=merchant,
            earn=earn,
            key=f"order:{order.shopify_order_id}:refund:full",
            points=None,
            reason="Order refunded in full",
        )
    if order.cancelled_at is not None:
        _reverse_once(
            merchant=merchant,
            earn=earn,
            key=f"order:{order.shopify_order_id}:cancel",
            points=None,
            reason="Order cancelled",
        )


def customer_aggregates_refresh(*, merchant, customer_id: str) -> None:
    """Recompute orders count, net spend and last order time from the stored orders."""
    live = Order.objects.filter(merchant=merchant, customer_id=customer_id, cancelled_at__isnull=True)
    stats = live.aggregate(
        count=Count("id"),
        spent=Coalesce(Sum(F("total_price") - F("refunded_amount")), Decimal("0")),
        last=Max("processed_at"),
    )
    Customer.objects.filter(merchant=merchant, pk=customer_id).update(
        orders_count=stats["count"], total_spent=max(stats["spent"], Decimal("0")), last_order_at=stats["last"]
    )


@transaction.atomic
def order_sync(*, merchant, payload: dict) -> bool:
    """Apply one order payload (any orders topic, or a reconciled order). Returns whether the
    payload was newer than the stored order; points and refunds are settled either way."""
    if not isinstance(payload, dict):
        raise PayloadInvalid("order payload is not an object")
    customer = _customer_for_order(merchant=merchant, payload=payload)
    order, applied = _order_upsert(merchant=merchant, payload=payload, customer=customer)
    _refunds_record(merchant=merchant, order=order, refunds=payload.get("refunds"))
    _points_apply(merchant=merchant, order=order)
    if order.customer_id:
        customer_aggregates_refresh(merchant=merchant, customer_id=order.customer_id)
    return applied


@transaction.atomic
def refund_sync(*, merchant, payload: dict) -> None:
    """Apply `refunds/create`: record the refund once and reverse its share of the points."""
    if not isinstance(payload, dict):
        raise PayloadInvalid("refund payload is not an object")
    order_id = shopify_id(payload.get("order_id"), field="order_id")
    order = Order.objects.select_for_update().filter(merchant=merchant, shopify_order_id=order_id).first()
    if order is None:
        # The order itself has not reached us yet; a retry (or reconciliation, whose order
        # carries its refunds) settles it.
        raise OrderNotYetKnown()
    _refunds_record(merchant=merchant, order=order, refunds=[payload])
    _points_apply(merchant=merchant, order=order)
    if order.customer_id:
        customer_aggregates_refresh(merchant=merchant, customer_id=order.customer_id)


class OrderNotYetKnown(Exception):
    """A refund arrived before its order: retry later (webhooks are not delivered in order)."""


@transaction.atomic
def customer_sync(*, merchant, payload: dict, delivery: WebhookDelivery | None = None) -> bool:
    """Apply `customers/create` and `customers/update`. Returns False when a newer customers
    delivery was already applied (A4) or the customer was redacted."""
    if not isinstance(payload, dict):
        raise PayloadInvalid("customer payload is not an object")
    customer_id = shopify_id(payload.get("id"), field="id")
    if delivery is not None and delivery.triggered_at is not None:
        newer = WebhookDelivery.objects.filter(
            merchant=merchant,
            topic__in=CUSTOMER_TOPICS,
            status=WebhookStatus.PROCESSED,
            triggered_at__gt=delivery.triggered_at,
            body__id=payload.get("id"),
        ).exclude(pk=delivery.pk)
        if newer.exists():
            return False
    Customer.objects.bulk_create([Customer(merchant=merchant, shopify_customer_id=customer_id)], ignore_conflicts=True)
    customer = Customer.objects.select_for_update().get(merchant=merchant, shopify_customer_id=customer_id)
    if customer.redacted_at is not None:
        return False
    email = str(payload.get("email") or "")[:254]
    customer.email = email if "@" in email else ""
    customer.first_name = str(payload.get("first_name") or "")[:255]
    customer.last_name = str(payload.get("last_name") or "")[:255]
    customer.phone = str(payload.get("phone") or "")[:32]
    customer.email_marketing_consent = _consent_state(payload.get("email_marketing_consent"))
    customer.sms_marketing_consent = _consent_state(payload.get("sms_marketing_consent"))
    locale = normalize_locale(payload.get("locale"))
    if locale:
        customer.locale = locale
    customer.save(
        update_fields=[
            "email",
            "first_name",
            "last_name",
            "phone",
            "email_marketing_consent",
            "sms_marketing_consent",
            "locale",
            "updated_at",
        ]
    )
    return True


def _consent_state(consent) -> str:
    """Shopify's `{"state": "subscribed", "opt_in_level": …}` → the state ("" when absent)."""
    if not isinstance(consent, dict):
        return ""
    return str(consent.get("state") or "").lower()[:16]


def order_updated_at(payload: dict) -> datetime | None:
    return timestamp(payload.get("updated_at"), field="updated_at")
