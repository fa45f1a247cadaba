"""The ledger's metafield values and the drift between them and the copies, in SQL."""

import logging
from dataclasses import dataclass

from django.db import connection

from apps.core.models import Customer
from apps.core.tenancy import merchant_scope

from .spec import CUSTOMER_KEYS, SWEEP_PAGE

logger = logging.getLogger(__name__)

# --- the ledger's values, in SQL ----------------------------------------------------------------


def _value_sql() -> dict[str, str]:
    """The metafield value of each key as a SQL expression over `users u` and `vip_tiers t`.

    One definition serves both the sweep (which compares it with the copy in SQL) and the sync
    (which writes it), so they can never disagree on formatting. NULL means "no metafield".
    """
    if connection.vendor == "postgresql":
        return {
            "points_balance": "u.points_balance::text",
            "vip_tier": "NULLIF(t.name ->> 'en', '')",
            "churn_score": "round(u.churn_score::numeric, 4)::text",
            "lifecycle_stage": "NULLIF(u.lifecycle_stage, '')",
            "shared_customer_id": "NULLIF(u.shared_customer_id, '')",
        }
    # SQLite: the zero-setup first run only.
    return {
        "points_balance": "CAST(u.points_balance AS TEXT)",
        "vip_tier": "NULLIF(json_extract(t.name, '$.en'), '')",
        "churn_score": "CASE WHEN u.churn_score IS NULL THEN NULL ELSE printf('%%.4f', u.churn_score) END",
        "lifecycle_stage": "NULLIF(u.lifecycle_stage, '')",
        "shared_customer_id": "NULLIF(u.shared_customer_id, '')",
    }


def _distinct(left: str, right: str) -> str:
    operator = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    return f"({left}) {operator} ({right})"


@dataclass
class LedgerRow:
    customer_id: str
    shopify_customer_id: str
    values: dict  # key -> str | None


def _ledger_values(merchant_id: str, customer_ids: list[str]) -> dict[str, LedgerRow]:
    """The current values of these customers of this merchant (others' ids are ignored)."""
    if not customer_ids:
        return {}
    expressions = _value_sql()
    columns = ", ".join(f"{expressions[key]} AS {key}" for key in CUSTOMER_KEYS)
    placeholders = ", ".join(["%s"] * len(customer_ids))
    sql = (
        f"SELECT u.id, u.shopify_customer_id, {columns} "  # noqa: S608  (constant expressions; values are parameters)
        "FROM users u LEFT JOIN vip_tiers t ON t.id = u.vip_tier_id "
        f"WHERE u.merchant_id = %s AND u.redacted_at IS NULL AND u.id IN ({placeholders})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant_id, *customer_ids])
        rows = cursor.fetchall()
    return {
        row[0]: LedgerRow(
            customer_id=row[0], shopify_customer_id=row[1], values=dict(zip(CUSTOMER_KEYS, row[2:], strict=True))
        )
        for row in rows
    }


def customer_metafields_drifted_page(*, merchant, after: str = "", limit: int = SWEEP_PAGE) -> list[tuple[str, str]]:
    """The next `limit` customers (by Shopify id, after `after`) whose copy is missing or stale.

    Returns (customer id, shopify customer id) pairs. One query per page: the ledger values
    computed in SQL, compared with the copies through one index lookup per key; the walk follows
    the (merchant, shopify_customer_id) unique index, so a page costs what it scans, whatever
    the size of the shop.
    """
    expressions = _value_sql()
    joins = " ".join(
        f"LEFT JOIN shopify_metafield_copies c{i} ON c{i}.customer_id = u.id AND c{i}.key = '{key}'"
        for i, key in enumerate(CUSTOMER_KEYS)
    )
    differs = " OR ".join(_distinct(expressions[key], f"c{i}.value") for i, key in enumerate(CUSTOMER_KEYS))
    sql = (
        "SELECT u.id, u.shopify_customer_id FROM users u "  # noqa: S608  (constant keys and expressions)
        f"LEFT JOIN vip_tiers t ON t.id = u.vip_tier_id {joins} "
        "WHERE u.merchant_id = %s AND u.redacted_at IS NULL AND u.shopify_customer_id > %s "
        f"AND ({differs}) ORDER BY u.shopify_customer_id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant.pk, after, limit])
        return [(row[0], row[1]) for row in cursor.fetchall()]


def _customer_page(merchant, after: str, limit: int) -> list[tuple[str, str]]:
    """Every (not redacted) customer, keyset by Shopify id: the verification walk."""
    with merchant_scope(merchant):
        return list(
            Customer.objects.filter(merchant=merchant, redacted_at__isnull=True, shopify_customer_id__gt=after)
            .order_by("shopify_customer_id")
            .values_list("id", "shopify_customer_id")[:limit]
        )
