"""Shoppers known only by the identity Shopify verified for them (the app proxy)."""

import functools
from collections.abc import Mapping

from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import Col

from apps.core.audit import audit_record
from apps.core.models import Customer
from apps.core.tracking import track_on_commit

# The row's timestamps are left out (deferred: Django reads one on first access). No storefront
# answer shows them, and reading a timestamptz costs psycopg a Python loader per column and
# request (Django's time-zone loader), ~3 % of the widget endpoint's CPU for these four.
DEFERRED = frozenset({"created_at", "updated_at", "last_order_at", "redacted_at"})
_FIELDS = [field for field in Customer._meta.concrete_fields if field.attname not in DEFERRED]
_ATTNAMES = [field.attname for field in _FIELDS]
_COLUMNS = ", ".join(f"u.{field.column}" for field in _FIELDS)
_TABLE = Customer._meta.db_table
ALIAS = "u"


def _lookup_sql(also: Mapping[str, str]) -> str:
    extra = "".join(f", ({sql}) AS also_{name}" for name, sql in also.items())
    return (
        f"SELECT {_COLUMNS}{extra} FROM {_TABLE} {ALIAS} "  # noqa: S608  (code-registered expressions, bound values)
        "WHERE u.merchant_id = %(merchant)s AND u.shopify_customer_id = %(shopify_customer_id)s LIMIT 1"
    )


@functools.cache
def _converters() -> list:
    """What Django's compiler applies to each column (the backend's, then the field's)."""
    found = []
    for index, field in enumerate(_FIELDS):
        expression = Col(_TABLE, field)
        converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if converters:
            found.append((index, expression, converters))
    return found


def _customer_from_row(row) -> Customer:
    values = list(row[: len(_FIELDS)])
    for index, expression, converters in _converters():
        for converter in converters:
            values[index] = converter(values[index], expression, connection)
    return Customer.from_db(connection.alias, _ATTNAMES, values)


def customer_get_or_create_by_shopify_id(
    *, merchant, shopify_customer_id: str, also: Mapping[str, tuple[str, Mapping]] | None = None
) -> Customer:
    """Return the merchant's customer with this Shopify id, creating a bare row when unknown.

    A shopper can log in before the customers/create webhook is processed. The row created
    here holds only the Shopify id: no name or email, which the webhook fills in later.

    `also` ({name: (sql, params)}) adds SQL expressions over the shopper's row (alias `u`) to
    the same statement — what a storefront answer needs besides the row (the widget
    contributors' lookups). Their values are in `customer.looked_up[name]`; a customer created
    here has none (`{}`). Expressions come from code, never from a request; values are bound.
    """
    # The storefront's hottest query, once per app-proxy request: one fixed statement on the
    # unique (merchant, shopify_customer_id) key, read with a plain cursor — prepared on
    # PostgreSQL (apps.core.db.postgresql), where planning it cost more than running it.
    also = also or {}
    params = {"merchant": merchant.pk, "shopify_customer_id": shopify_customer_id}
    for _sql, extra in also.values():
        params.update(extra)
    with getattr(connection, "prepared_cursor", connection.cursor)() as cursor:
        cursor.execute(_lookup_sql({name: sql for name, (sql, _params) in also.items()}), params)
        row = cursor.fetchone()
    if row is not None:
        customer = _customer_from_row(row)
        customer.looked_up = dict(zip(also, row[len(_FIELDS) :], strict=True))
        return customer
    try:
        customer = _customer_create(merchant=merchant, shopify_customer_id=shopify_customer_id)
    except IntegrityError:
        # A concurrent request (or the webhook) created it first.
        customer = Customer.objects.get(merchant=merchant, shopify_customer_id=shopify_customer_id)
    customer.looked_up = {}
    return customer


def shopper_expression_get(*, customer, sql: str, params: Mapping):
    """One lookup expression (see `customer_get_or_create_by_shopify_id`) for a customer in hand."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ({sql}) FROM {_TABLE} {ALIAS} WHERE u.id = %(customer)s",  # noqa: S608  (as above)
            {**params, "customer": customer.pk},
        )
        row = cursor.fetchone()
    return row[0] if row else None


@transaction.atomic
def _customer_create(*, merchant, shopify_customer_id: str) -> Customer:
    customer = Customer.objects.create(merchant=merchant, shopify_customer_id=shopify_customer_id)
    audit_record(
        merchant=merchant,
        action="customer_created",
        target=customer,
        metadata={"source": "app_proxy"},
    )
    track_on_commit("customer_created", merchant=merchant, distinct_id=customer.pk, properties={"source": "app_proxy"})
    return customer
