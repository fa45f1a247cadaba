"""Order history imports: a merchant's past orders, from a CSV export, into orders and the ledger.

Each good row becomes an order and, through `points_earn`, one ledger entry keyed
`import:order:<shopify order id>`, so running the same file again creates nothing new. Bad rows are
reported with their line number and reason; they never stop the import.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Sum
from django.utils.translation import gettext as _

from apps.core.audit import audit_record
from apps.core.errors import ValidationFailed
from apps.core.models import Customer, Order
from apps.core.tenancy import merchant_scope

from .ledger import points_earn, points_for_amount

COLUMNS = ("customer_id", "email", "order_id", "processed_at", "total", "currency")
MAX_TOTAL = Decimal("999999999999.99")  # orders.total_price is numeric(14, 2)
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class MalformedCsv(ValidationFailed):
    code = "malformed_csv"


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0  # already present with the same data
    rejected: int = 0
    customers_created: int = 0
    points_earned: int = 0
    errors: list[RowError] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        self.errors.append(RowError(line=line, reason=reason))


@dataclass(frozen=True)
class OrderRow:
    line: int
    customer_id: str
    email: str
    order_id: str
    processed_at: datetime
    total: Decimal
    currency: str

    def same_order(self, other) -> bool:
        return (
            self.customer_id == other.customer_id
            and self.processed_at == other.processed_at
            and self.total == other.total
            and self.currency == other.currency
        )


def orders_csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """Read an orders CSV: check the header, then yield (line number, row) for every data row."""
    reader = csv.DictReader(lines)
    # "customer id", "Customer-ID" and "customer_id" all name the same column.
    header = [re.sub(r"[\s-]+", "_", name.strip().lower()) for name in (reader.fieldnames or [])]
    missing = [name for name in COLUMNS if name not in header]
    if not header or missing or len(set(header)) != len(header):
        raise MalformedCsv(
            _("The CSV header must name the columns %(expected)s; missing: %(missing)s.")
            % {"expected": ", ".join(COLUMNS), "missing": ", ".join(missing) or _("none (duplicated columns)")}
        )
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, row


def _parse(line: int, row: dict, merchant) -> OrderRow | str:
    """The row's values, or the reason it is rejected."""
    if row.get(None):
        return _("too many columns")
    values = {}
    for name in COLUMNS:
        value = row.get(name)
        if value is None:
            return _("missing column %(column)s") % {"column": name}
        values[name] = value.strip()
    for name in ("customer_id", "order_id"):
        if not ID_RE.match(values[name]):
            return _("invalid %(column)s") % {"column": name}
    if values["email"]:
        try:
            validate_email(values["email"])
        except ValidationError:
            return _("invalid email address")
    try:
        processed_at = datetime.fromisoformat(values["processed_at"])
    except ValueError:
        return _("bad date %(value)r (expected ISO 8601)") % {"value": values["processed_at"][:40]}
    if processed_at.tzinfo is None:
        processed_at = processed_at.replace(tzinfo=UTC)  # exports without an offset are in UTC
    if processed_at > datetime.now(UTC):
        return _("date is in the future")
    try:
        total = Decimal(values["total"])
    except InvalidOperation:
        return _("total %(value)r is not a number") % {"value": values["total"][:40]}
    if not total.is_finite():
        return _("total %(value)r is not a number") % {"value": values["total"][:40]}
    if total < 0:
        return _("total is negative")
    if total > MAX_TOTAL or total.as_tuple().exponent < -2:
        return _("total must have at most two decimal places and 12 digits")
    currency = values["currency"]
    if not CURRENCY_RE.match(currency):
        return _("unknown currency format %(value)r (expected a code like USD)") % {"value": currency[:10]}
    if currency != merchant.currency:
        return _("currency %(currency)s differs from the shop's currency %(shop)s") % {
            "currency": currency,
            "shop": merchant.currency,
        }
    return OrderRow(
        line=line,
        customer_id=values["customer_id"],
        email=values["email"],
        order_id=values["order_id"],
        processed_at=processed_at,
        total=total.quantize(Decimal("0.01")),
        currency=currency,
    )


def _customer_refresh(*, merchant, customer: Customer) -> None:
    """Recompute the customer's order aggregates from its orders (idempotent, unlike increments)."""
    totals = Order.objects.filter(merchant=merchant, customer=customer).aggregate(
        count=Count("id"), spent=Sum(F("total_price") - F("refunded_amount")), last=Max("processed_at")
    )
    Customer.objects.filter(merchant=merchant, pk=customer.pk).update(
        orders_count=totals["count"], total_spent=totals["spent"] or Decimal("0"), last_order_at=totals["last"]
    )


def _import_row(*, merchant, row: OrderRow, report: ImportReport) -> None:
    with transaction.atomic():
        existing = (
            Order.objects.filter(merchant=merchant, shopify_order_id=row.order_id)
            .values("customer__shopify_customer_id", "processed_at", "total_price", "currency")
            .first()
        )
        if existing is not None:
            stored = OrderRow(
                line=0,
                customer_id=existing["customer__shopify_customer_id"] or "",
                email="",
                order_id=row.order_id,
                processed_at=existing["processed_at"],
                total=existing["total_price"],
                currency=existing["currency"],
            )
            if row.same_order(stored):
                report.skipped += 1
            else:
                report.reject(
                    row.line, _("order %(order)s was already imported with different data") % {"order": row.order_id}
                )
            return
        customer, created = Customer.objects.select_for_update().get_or_create(
            merchant=merchant, shopify_customer_id=row.customer_id, defaults={"email": row.email}
        )
        if not created and row.email and customer.email != row.email:
            customer.email = row.email
            customer.save(update_fields=["email", "updated_at"])
        order = Order.objects.create(
            merchant=merchant,
            customer=customer,
            shopify_order_id=row.order_id,
            total_price=row.total,
            currency=row.currency,
            processed_at=row.processed_at,
            shopify_updated_at=row.processed_at,
        )
        points = points_for_amount(merchant=merchant, amount=row.total)
        if points > 0:
            points_earn(
                merchant=merchant,
                customer=customer,
                points=points,
                idempotency_key=f"import:order:{row.order_id}",
                order=order,
                reason="order import",
            )
        _customer_refresh(merchant=merchant, customer=customer)
    report.imported += 1
    report.customers_created += int(created)
    report.points_earned += points


def orders_import(*, merchant, rows: Iterable[tuple[int, dict]]) -> ImportReport:
    """Import (line number, CSV row) pairs as orders that earn points; report bad rows and go on."""
    report = ImportReport()
    seen: dict[str, OrderRow] = {}
    with merchant_scope(merchant):
        for line, raw in rows:
            parsed = _parse(line, raw, merchant)
            if isinstance(parsed, str):
                report.reject(line, parsed)
                continue
            first = seen.get(parsed.order_id)
            if first is not None:
                if first.same_order(parsed):
                    report.skipped += 1
                else:
                    report.reject(
                        line,
                        _("duplicate order id %(order)s with different data (first on line %(first)s)")
                        % {"order": parsed.order_id, "first": first.line},
                    )
                continue
            seen[parsed.order_id] = parsed
            try:
                _import_row(merchant=merchant, row=parsed, report=report)
            except IntegrityError:
                # Another import wrote the same order or customer between our check and insert.
                report.reject(
                    line, _("order %(order)s conflicts with a concurrent change") % {"order": parsed.order_id}
                )
        with transaction.atomic():
            audit_record(
                merchant=merchant,
                action="orders_imported",
                metadata={
                    "imported": report.imported,
                    "skipped": report.skipped,
                    "rejected": report.rejected,
                    "points_earned": report.points_earned,
                },
            )
    return report
