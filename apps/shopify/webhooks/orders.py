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

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.db.models import Count, F, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from apps.core.locales import normalize_locale
from apps.core.models import CUSTOMER_CONTACT_FIELDS, Customer, Order, PointsTransaction, TransactionKind
from apps.core.services import Earn, earning_rate, points_earn_many, points_for_amount, points_reverse
from apps.core.signals import orders_synced

from ..models import ShopifyRefund, WebhookDelivery, WebhookStatus
from .payloads import PayloadInvalid, money, optional_shopify_id, refund_amount, shopify_id, timestamp

PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
CUSTOMER_TOPICS = ("customers/create", "customers/update")


def earn_key(order: Order) -> str:
    return f"order:{order.shopify_order_id}:earn"


@dataclass
class OrderUpdate:
    """One order payload, parsed and validated before anything is written."""

    order_id: str
    updated_at: datetime
    fields: dict
    customer_id: str | None  # Shopify's customer id
    refunds: list[ShopifyRefund] | None  # None: the payload says nothing about refunds
    order: Order | None = None  # the stored order, once upserted


def order_update_parse(*, merchant, payload) -> OrderUpdate:
    """Validate one order payload (any orders topic, or a reconciled order)."""
    if not isinstance(payload, dict):
        raise PayloadInvalid("order payload is not an object")
    customer = payload.get("customer")
    return OrderUpdate(
        order_id=shopify_id(payload.get("id"), field="id"),
        updated_at=timestamp(payload.get("updated_at"), field="updated_at", required=True),
        fields=_order_fields(payload, merchant),
        customer_id=optional_shopify_id(customer.get("id"), field="customer.id")
        if isinstance(customer, dict)
        else None,
        refunds=refund_rows(merchant=merchant, refunds=payload.get("refunds")),
    )


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


def refund_rows(*, merchant, refunds) -> list[ShopifyRefund] | None:
    """A payload's refunds as unsaved rows (their order is set when stored)."""
    if refunds is None:
        return None
    if not isinstance(refunds, list):
        raise PayloadInvalid("refunds is not a list")
    rows = []
    for refund in refunds:
        if not isinstance(refund, dict):
            raise PayloadInvalid("refund is not an object")
        rows.append(
            ShopifyRefund(
                merchant=merchant,
                shopify_refund_id=shopify_id(refund.get("id"), field="refund id"),
                amount=refund_amount(refund),
                refunded_at=timestamp(
                    refund.get("created_at") or refund.get("processed_at"), field="refund created_at"
                ),
            )
        )
    return rows


def _customers_for_orders(*, merchant, updates: list[OrderUpdate]) -> dict[str, str]:
    """Shopify customer id → our customer id; customers are created bare when an order arrives
    before `customers/create`."""
    ids = sorted({update.customer_id for update in updates if update.customer_id})
    if not ids:
        return {}
    Customer.objects.bulk_create(
        [Customer(merchant=merchant, shopify_customer_id=customer_id) for customer_id in ids], ignore_conflicts=True
    )
    return dict(
        Customer.objects.filter(merchant=merchant, shopify_customer_id__in=ids).values_list("shopify_customer_id", "pk")
    )


ORDER_SYNC_FIELDS = ["name", "total_price", "currency", "financial_status", "processed_at", "cancelled_at"]


def _orders_upsert(*, merchant, updates: list[OrderUpdate], customers: dict[str, str]) -> list[bool]:
    """Insert or update the orders (one per update, distinct order ids) under row locks, taken in
    order-id order. Returns, per update, whether its payload applied (A4: not older)."""
    existing = {
        order.shopify_order_id: order
        for order in Order.objects.select_for_update()
        .filter(merchant=merchant, shopify_order_id__in=[update.order_id for update in updates])
        .order_by("shopify_order_id")
    }
    new, changed, applied = [], [], []
    for update in updates:
        customer_id = customers.get(update.customer_id)
        order = existing.get(update.order_id)
        if order is None:
            order = Order(
                merchant=merchant,
                shopify_order_id=update.order_id,
                customer_id=customer_id,
                shopify_updated_at=update.updated_at,
                **update.fields,
            )
            new.append(order)
            applied.append(True)
        elif order.shopify_updated_at is not None and update.updated_at <= order.shopify_updated_at:
            if customer_id is not None and order.customer_id is None:
                order.customer_id = customer_id
                changed.append(order)
            applied.append(False)
        else:
            for name, value in update.fields.items():
                setattr(order, name, value)
            order.shopify_updated_at = update.updated_at
            if customer_id is not None:
                order.customer_id = customer_id
            order.refunded_amount = min(order.refunded_amount, order.total_price)
            changed.append(order)
            applied.append(True)
        update.order = order
    if new:
        # A concurrent insert of the same order fails here; the caller's retry takes the update path.
        with transaction.atomic():
            Order.objects.bulk_create(new)
    if changed:
        now = timezone.now()
        for order in changed:
            order.updated_at = now
        Order.objects.bulk_update(
            changed,
            [*ORDER_SYNC_FIELDS, "customer", "shopify_updated_at", "refunded_amount", "updated_at"],
        )
    return applied


def _refunds_record(*, merchant, order: Order, rows: list[ShopifyRefund] | None) -> None:
    if rows is None:
        return
    for row in rows:
        row.order = order
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


def _earns_due(*, merchant, orders: list[Order], rate: Decimal) -> list[Earn]:
    """The earn each paid, uncancelled order with a customer still lacks."""
    wanted = {
        earn_key(order): order
        for order in orders
        if order.customer_id is not None and order.financial_status in PAID_STATUSES and order.cancelled_at is None
    }
    done = set(
        PointsTransaction.objects.filter(merchant=merchant, idempotency_key__in=list(wanted)).values_list(
            "idempotency_key", flat=True
        )
    )
    earns = []
    for key, order in wanted.items():
        points = points_for_amount(merchant=merchant, amount=order.total_price, rate=rate)
        if key not in done and points > 0:
            earns.append(
                Earn(
                    customer_id=order.customer_id,
                    points=points,
                    idempotency_key=key,
                    order=order,
                    reason=f"Order {order.name or order.shopify_order_id}",
                    metadata={"shopify_order_id": order.shopify_order_id, "amount": str(order.total_price)},
                )
            )
    return earns


def _reversals_apply(*, merchant, order: Order) -> None:
    """Bring the order's reversals to what the stored order calls for (each step once)."""
    if order.customer_id is None:
        return
    earn = PointsTransaction.objects.filter(merchant=merchant, idempotency_key=earn_key(order)).first()
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


def _points_apply(*, merchant, orders: list[Order], rate: Decimal | None = None) -> None:
    """Bring each order's ledger entries to what the stored order calls for: the missing earns
    in one batch, then the reversals of refunded or cancelled orders one by one."""
    points_earn_many(
        merchant=merchant,
        earns=_earns_due(
            merchant=merchant, orders=orders, rate=earning_rate(merchant=merchant) if rate is None else rate
        ),
    )
    for order in orders:
        if order.refunded_amount > 0 or order.cancelled_at is not None:
            _reversals_apply(merchant=merchant, order=order)


def customer_aggregates_refresh(*, merchant, customer_ids) -> None:
    """Recompute orders count, net spend and last order time from the stored orders."""
    ids = sorted({customer_id for customer_id in customer_ids if customer_id})
    if not ids:
        return
    live = (
        Order.objects.filter(merchant=merchant, customer_id=OuterRef("pk"), cancelled_at__isnull=True)
        .order_by()
        .values("customer_id")
    )
    Customer.objects.filter(merchant=merchant, pk__in=ids).update(
        orders_count=Coalesce(Subquery(live.annotate(count=Count("id")).values("count")), 0),
        total_spent=Greatest(
            Coalesce(
                Subquery(live.annotate(spent=Sum(F("total_price") - F("refunded_amount"))).values("spent")),
                Decimal("0"),
            ),
            Decimal("0"),
        ),
        last_order_at=Subquery(live.annotate(last=Max("processed_at")).values("last")),
    )


@transaction.atomic
def orders_sync(*, merchant, updates: list[OrderUpdate]) -> list[bool]:
    """Apply parsed order payloads, oldest first, set-wise: customers and orders upserted with a
    few statements, refunds recorded once per refund id, points settled (see the module doc),
    customer aggregates refreshed. Several payloads of one order are applied in turn (rounds).
    Returns, per update, whether it was newer than the stored order."""
    rate = earning_rate(merchant=merchant)
    applied: dict[int, bool] = {}
    pending = list(enumerate(updates))
    while pending:
        this_round, later, seen = [], [], set()
        for index, update in pending:
            (later if update.order_id in seen else this_round).append((index, update))
            seen.add(update.order_id)
        batch = [update for _, update in this_round]
        customers = _customers_for_orders(merchant=merchant, updates=batch)
        for (index, _update), result in zip(
            this_round, _orders_upsert(merchant=merchant, updates=batch, customers=customers), strict=True
        ):
            applied[index] = result
        for update in batch:
            _refunds_record(merchant=merchant, order=update.order, rows=update.refunds)
        _points_apply(merchant=merchant, orders=[update.order for update in batch], rate=rate)
        customer_aggregates_refresh(merchant=merchant, customer_ids=[update.order.customer_id for update in batch])
        orders_synced.send(sender=orders_sync, merchant=merchant, orders=[update.order for update in batch])
        pending = later
    return [applied[index] for index in range(len(updates))]


def order_sync(*, merchant, payload: dict) -> bool:
    """Apply one order payload (any orders topic, or a reconciled order). Returns whether the
    payload was newer than the stored order; points and refunds are settled either way."""
    return orders_sync(merchant=merchant, updates=[order_update_parse(merchant=merchant, payload=payload)])[0]


@transaction.atomic
def refund_sync(*, merchant, payload: dict) -> None:
    """Apply `refunds/create`: record the refund once and reverse its share of the points."""
    if not isinstance(payload, dict):
        raise PayloadInvalid("refund payload is not an object")
    order_id = shopify_id(payload.get("order_id"), field="order_id")
    rows = refund_rows(merchant=merchant, refunds=[payload])
    order = Order.objects.select_for_update().filter(merchant=merchant, shopify_order_id=order_id).first()
    if order is None:
        # The order itself has not reached us yet; a retry (or reconciliation, whose order
        # carries its refunds) settles it.
        raise OrderNotYetKnown()
    _refunds_record(merchant=merchant, order=order, rows=rows)
    _points_apply(merchant=merchant, orders=[order])
    customer_aggregates_refresh(merchant=merchant, customer_ids=[order.customer_id])
    orders_synced.send(sender=refund_sync, merchant=merchant, orders=[order])


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
    customer.save(update_fields=[*CUSTOMER_CONTACT_FIELDS, "locale", "updated_at"])
    return True


def _consent_state(consent) -> str:
    """Shopify's `{"state": "subscribed", "opt_in_level": …}` → the state ("" when absent)."""
    if not isinstance(consent, dict):
        return ""
    return str(consent.get("state") or "").lower()[:16]


def order_updated_at(payload: dict) -> datetime | None:
    return timestamp(payload.get("updated_at"), field="updated_at")
