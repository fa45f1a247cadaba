"""The points ledger: earn, redeem, adjust, reverse (RELIABILITY C1–C5).

Every write locks the customer row (`SELECT … FOR UPDATE`), checks the idempotency key under
that lock, appends one entry and moves the cached balance in the same transaction. The
database refuses a negative balance (CHECK) and a second entry with the same key (UNIQUE).
"""

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_entry, audit_record
from apps.core.errors import Conflict, InsufficientPoints, NotFound, ValidationFailed
from apps.core.models import (
    AuditLog,
    Customer,
    LifecycleStage,
    Order,
    PointsTransaction,
    ProgramSettings,
    Reward,
    TransactionKind,
    VipTier,
)
from apps.core.signals import ledger_customers_locking, ledger_entries_written
from apps.core.streams import stream_append_many_on_commit, stream_append_on_commit
from apps.core.tracking import track, track_on_commit

MAX_POINTS_PER_ENTRY = 10_000_000


class IdempotencyKeyReused(Conflict):
    code = "idempotency_conflict"
    default_message = _("This idempotency key was already used for a different points change.")


@dataclass(frozen=True)
class LedgerResult:
    transaction: PointsTransaction
    created: bool  # False when the idempotency key had already been applied

    @property
    def balance(self) -> int:
        return self.transaction.balance_after


def _validate_amount(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise ValidationFailed(details={"points": [str(_("Enter a whole number above zero."))]})
    if points > MAX_POINTS_PER_ENTRY:
        raise ValidationFailed(
            details={"points": [str(_("At most %(max)s points per change.") % {"max": MAX_POINTS_PER_ENTRY})]}
        )


def _lock_customer(merchant, customer) -> Customer:
    ledger_customers_locking.send(sender=_lock_customer, merchant=merchant, customer_ids=[customer.pk])
    try:
        return Customer.objects.select_for_update().get(pk=customer.pk, merchant=merchant)
    except Customer.DoesNotExist as exc:
        raise NotFound(_("Customer not found.")) from exc


def _existing(merchant, idempotency_key: str, *, kind: str, points: int, customer_id: str, reverses_id=None):
    """The entry already written under this key, if any; the key must not mean something else."""
    entry = PointsTransaction.objects.filter(merchant=merchant, idempotency_key=idempotency_key).first()
    if entry is None:
        return None
    if (
        entry.kind != kind
        or entry.customer_id != customer_id
        or (points and entry.points != points)
        or entry.reverses_id != reverses_id
    ):
        raise IdempotencyKeyReused()
    return LedgerResult(transaction=entry, created=False)


@dataclass(frozen=True)
class Earn:
    """One credit of `points_earn_many`."""

    customer_id: str
    points: int
    idempotency_key: str
    order: Order | None = None
    reason: str = ""
    metadata: dict | None = None


def tier_for(merchant, lifetime_points: int) -> VipTier | None:
    return (
        VipTier.objects.filter(merchant=merchant, min_lifetime_points__lte=lifetime_points)
        .order_by("-min_lifetime_points")
        .first()
    )


def _append(
    *,
    merchant,
    customer: Customer,
    kind: str,
    points: int,
    idempotency_key: str,
    lifetime_delta: int = 0,
    actor=None,
    order=None,
    reward=None,
    reverses=None,
    reversed_amount: int = 0,
    reason: str = "",
    metadata=None,
) -> PointsTransaction:
    """Move the locked customer's balance by `points` and append the entry. Caller holds the lock."""
    new_balance = customer.points_balance + points
    if new_balance < 0:
        raise InsufficientPoints()
    customer.points_balance = new_balance
    customer.lifetime_points = max(customer.lifetime_points + lifetime_delta, 0)
    previous_tier_id = customer.vip_tier_id
    tier = tier_for(merchant, customer.lifetime_points)
    customer.vip_tier = tier
    if tier is not None and customer.lifecycle_stage != LifecycleStage.CHURNED:
        customer.lifecycle_stage = LifecycleStage.VIP
    customer.save(update_fields=["points_balance", "lifetime_points", "vip_tier", "lifecycle_stage", "updated_at"])
    try:
        with transaction.atomic():
            entry = PointsTransaction.objects.create(
                merchant=merchant,
                customer=customer,
                kind=kind,
                points=points,
                balance_after=new_balance,
                idempotency_key=idempotency_key,
                actor=actor,
                order=order,
                reward=reward,
                reverses=reverses,
                reversed_amount=reversed_amount,
                reason=reason[:255],
                metadata=metadata or {},
            )
    except IntegrityError as exc:
        # Same key written for another customer between our check and insert.
        raise IdempotencyKeyReused() from exc
    ledger_entries_written.send(sender=_append, merchant=merchant, entries=[entry])

    audit_record(
        merchant=merchant,
        actor=actor,
        action=f"points_{kind}",
        target=entry,
        metadata={"customer_id": customer.pk, "points": points, "balance": new_balance},
    )
    stream_append_on_commit(
        merchant_id=merchant.pk,
        key=f"points:{customer.pk}",
        data={"customer_id": customer.pk, "points_balance": new_balance, "transaction_id": entry.pk},
    )
    new_tier_id = tier.pk if tier is not None else None
    if new_tier_id != previous_tier_id:
        audit_record(
            merchant=merchant,
            actor=actor,
            action="vip_tier_changed",
            target=customer,
            metadata={"from": previous_tier_id, "to": tier.pk if tier else None},
        )
        stream_append_on_commit(
            merchant_id=merchant.pk,
            key=f"tiers:{customer.pk}",
            data={"customer_id": customer.pk, "vip_tier_id": tier.pk if tier else None},
        )
    track_on_commit(
        f"points_{kind}",
        merchant=merchant,
        distinct_id=customer.pk,
        properties={"points": points},
    )
    return entry


@transaction.atomic
def points_earn(
    *,
    merchant,
    customer,
    points: int,
    idempotency_key: str,
    order: Order | None = None,
    actor=None,
    reason: str = "",
    metadata=None,
) -> LedgerResult:
    """Credit points (an order, a sign-up, a referral…); counts toward the VIP tier."""
    _validate_amount(points)
    locked = _lock_customer(merchant, customer)
    existing = _existing(merchant, idempotency_key, kind=TransactionKind.EARN, points=points, customer_id=locked.pk)
    if existing:
        return existing
    entry = _append(
        merchant=merchant,
        customer=locked,
        kind=TransactionKind.EARN,
        points=points,
        lifetime_delta=points,
        idempotency_key=idempotency_key,
        order=order,
        actor=actor,
        reason=reason,
        metadata=metadata,
    )
    return LedgerResult(transaction=entry, created=True)


@transaction.atomic
def points_redeem(
    *,
    merchant,
    customer,
    points: int,
    idempotency_key: str,
    reward: Reward | None = None,
    actor=None,
    reason: str = "",
    metadata=None,
) -> LedgerResult:
    """Debit points for a reward; refused, with nothing written, when the balance is short."""
    if reward is not None:
        if not reward.is_active or reward.merchant_id != merchant.pk:
            raise NotFound(_("Reward not found."))
        points = reward.points_cost
    _validate_amount(points)
    locked = _lock_customer(merchant, customer)
    existing = _existing(merchant, idempotency_key, kind=TransactionKind.REDEEM, points=-points, customer_id=locked.pk)
    if existing:
        return existing
    entry = _append(
        merchant=merchant,
        customer=locked,
        kind=TransactionKind.REDEEM,
        points=-points,
        idempotency_key=idempotency_key,
        reward=reward,
        actor=actor,
        reason=reason,
        metadata=metadata,
    )
    return LedgerResult(transaction=entry, created=True)


@transaction.atomic
def points_adjust(*, merchant, customer, points: int, idempotency_key: str, actor=None, reason: str) -> LedgerResult:
    """A manual correction by staff, up or down; a reason is required, the balance stays >= 0."""
    if not reason or not reason.strip():
        raise ValidationFailed(details={"reason": [str(_("Say why the points are adjusted."))]})
    _validate_amount(abs(points) if isinstance(points, int) and not isinstance(points, bool) else points)
    locked = _lock_customer(merchant, customer)
    existing = _existing(merchant, idempotency_key, kind=TransactionKind.ADJUST, points=points, customer_id=locked.pk)
    if existing:
        return existing
    entry = _append(
        merchant=merchant,
        customer=locked,
        kind=TransactionKind.ADJUST,
        points=points,
        idempotency_key=idempotency_key,
        actor=actor,
        reason=reason.strip(),
    )
    return LedgerResult(transaction=entry, created=True)


@transaction.atomic
def points_reverse(
    *,
    merchant,
    original: PointsTransaction,
    idempotency_key: str,
    points: int | None = None,
    actor=None,
    reason: str = "",
) -> LedgerResult:
    """Reverse an entry, wholly or in part (partial refunds), never more than it moved in total.

    Reversing an earn whose points were already spent takes back what is left and records the
    shortfall (possibly a zero-point entry): the balance never goes below zero, and the
    reversal still counts as done, so it happens exactly once.
    """
    if original.merchant_id != merchant.pk:
        raise NotFound(_("Points transaction not found."))
    if original.kind == TransactionKind.REVERSE:
        raise ValidationFailed(details={"transaction_id": [str(_("A reversal cannot be reversed."))]})
    locked = _lock_customer(merchant, original.customer)
    existing = _existing(
        merchant,
        idempotency_key,
        kind=TransactionKind.REVERSE,
        points=0,
        customer_id=locked.pk,
        reverses_id=original.pk,
    )
    if existing:
        return existing
    already = (
        PointsTransaction.objects.filter(merchant=merchant, reverses=original).aggregate(total=Sum("reversed_amount"))[
            "total"
        ]
        or 0
    )
    remaining = abs(original.points) - already
    wanted = remaining if points is None else points
    if points is not None:
        _validate_amount(points)
    if remaining <= 0 or wanted > remaining:
        raise Conflict(_("This transaction has already been reversed."))
    sign = -1 if original.points > 0 else 1
    delta = sign * wanted
    shortfall = 0
    if delta < 0 and locked.points_balance + delta < 0:
        shortfall = -(locked.points_balance + delta)
        delta = -locked.points_balance
    lifetime_delta = delta if original.kind == TransactionKind.EARN else 0
    entry = _append(
        merchant=merchant,
        customer=locked,
        kind=TransactionKind.REVERSE,
        points=delta,
        lifetime_delta=lifetime_delta,
        idempotency_key=idempotency_key,
        order=original.order,
        reverses=original,
        reversed_amount=wanted,
        actor=actor,
        reason=reason,
        metadata={"shortfall": shortfall} if shortfall else {},
    )
    return LedgerResult(transaction=entry, created=True)


@transaction.atomic
def points_earn_many(*, merchant, earns: list[Earn]) -> list[PointsTransaction]:
    """`points_earn` for many credits at once (a burst of paid orders), with the same rules and
    the same rows: the customers are locked together (in id order, so two batches cannot
    deadlock), keys already applied are skipped, and entries, balances, tier changes and audit
    rows are written with one statement each. Returns the entries written."""
    for earn in earns:
        _validate_amount(earn.points)
    if not earns:
        return []
    applied = {
        entry.idempotency_key: entry
        for entry in PointsTransaction.objects.filter(
            merchant=merchant, idempotency_key__in=[earn.idempotency_key for earn in earns]
        )
    }
    customer_ids = sorted({earn.customer_id for earn in earns})
    ledger_customers_locking.send(sender=points_earn_many, merchant=merchant, customer_ids=customer_ids)
    customers = {
        customer.pk: customer
        for customer in Customer.objects.select_for_update()
        .filter(merchant=merchant, pk__in=customer_ids)
        .order_by("pk")
    }
    tiers = list(VipTier.objects.filter(merchant=merchant).order_by("-min_lifetime_points"))
    previous_tiers, entries = {}, []
    for earn in earns:
        customer = customers.get(earn.customer_id)
        if customer is None:
            raise NotFound(_("Customer not found."))
        done = applied.get(earn.idempotency_key)
        if done is not None:
            if (done.kind, done.customer_id, done.points) != (TransactionKind.EARN, customer.pk, earn.points):
                raise IdempotencyKeyReused()
            continue
        previous_tiers.setdefault(customer.pk, customer.vip_tier_id)
        customer.points_balance += earn.points
        customer.lifetime_points += earn.points
        entries.append(
            PointsTransaction(
                merchant=merchant,
                customer=customer,
                kind=TransactionKind.EARN,
                points=earn.points,
                balance_after=customer.points_balance,
                idempotency_key=earn.idempotency_key,
                order=earn.order,
                reason=earn.reason[:255],
                metadata=earn.metadata or {},
            )
        )
        applied[earn.idempotency_key] = entries[-1]  # the same credit twice in one batch: once
    if not entries:
        return []
    now = timezone.now()
    touched = [customers[pk] for pk in previous_tiers]
    audits = [
        audit_entry(
            merchant=merchant,
            action="points_earn",
            target=entry,
            metadata={"customer_id": entry.customer_id, "points": entry.points, "balance": entry.balance_after},
        )
        for entry in entries
    ]
    streams = []
    for customer in touched:
        tier = next((tier for tier in tiers if tier.min_lifetime_points <= customer.lifetime_points), None)
        customer.vip_tier = tier
        if tier is not None and customer.lifecycle_stage != LifecycleStage.CHURNED:
            customer.lifecycle_stage = LifecycleStage.VIP
        customer.updated_at = now
        latest = next(entry for entry in reversed(entries) if entry.customer_id == customer.pk)
        streams.append(
            (
                f"points:{customer.pk}",
                {"customer_id": customer.pk, "points_balance": customer.points_balance, "transaction_id": latest.pk},
            )
        )
        if customer.vip_tier_id != previous_tiers[customer.pk]:
            audits.append(
                audit_entry(
                    merchant=merchant,
                    action="vip_tier_changed",
                    target=customer,
                    metadata={"from": previous_tiers[customer.pk], "to": customer.vip_tier_id},
                )
            )
            streams.append((f"tiers:{customer.pk}", {"customer_id": customer.pk, "vip_tier_id": customer.vip_tier_id}))
    try:
        with transaction.atomic():
            PointsTransaction.objects.bulk_create(entries)
    except IntegrityError as exc:
        raise IdempotencyKeyReused() from exc
    Customer.objects.bulk_update(
        touched, ["points_balance", "lifetime_points", "vip_tier", "lifecycle_stage", "updated_at"]
    )
    AuditLog.objects.bulk_create(audits)
    ledger_entries_written.send(sender=points_earn_many, merchant=merchant, entries=entries)
    stream_append_many_on_commit(merchant_id=merchant.pk, entries=streams)

    def track_earns():
        for entry in entries:
            track("points_earn", merchant=merchant, distinct_id=entry.customer_id, properties={"points": entry.points})

    transaction.on_commit(track_earns)
    return entries


def earning_rate(*, merchant) -> Decimal:
    """Points per unit of the shop's currency (the merchant's earning rule; 1 by default)."""
    return ProgramSettings.objects.filter(merchant=merchant).values_list(
        "points_per_currency_unit", flat=True
    ).first() or Decimal("1")


def points_for_amount(*, merchant, amount: Decimal, rate: Decimal | None = None) -> int:
    """Points an order amount earns under the merchant's earning rule (rounded down)."""
    if rate is None:
        rate = earning_rate(merchant=merchant)
    points = (Decimal(amount) * rate).to_integral_value(rounding=ROUND_FLOOR)
    return max(int(points), 0)


def ledger_balance(*, merchant, customer) -> int:
    """The balance according to the ledger itself (the truth the cached balance must equal)."""
    return (
        PointsTransaction.objects.filter(merchant=merchant, customer=customer).aggregate(total=Sum("points"))["total"]
        or 0
    )
