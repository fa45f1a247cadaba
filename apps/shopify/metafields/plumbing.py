"""Reports, the per-shop sync lock, Shopify calls and the copies table."""

import logging
import time
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope

from ..graphql import ShopifyAuthError, ShopifyError, graphql
from ..models import MetafieldCopy
from ..tokens import access_token_for, installation_mark_needs_reauth
from .selectors import LedgerRow
from .spec import CUSTOMER_KEYS, CUSTOMER_METAFIELDS_READ, LOCK_WAIT_SECONDS, READ_BATCH, _read_cost, customer_gid

logger = logging.getLogger(__name__)

# --- reports ----------------------------------------------------------------------------------


@dataclass
class SyncReport:
    customers: int = 0
    written: int = 0
    deleted: int = 0
    unchanged: int = 0
    conflicts: int = 0  # stale digests met and resolved by re-reading
    calls: int = 0
    failed: list = field(default_factory=list)  # (customer id, key, code): left for the next sweep

    def add(self, other: "SyncReport") -> "SyncReport":
        self.customers += other.customers
        self.written += other.written
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.conflicts += other.conflicts
        self.calls += other.calls
        self.failed.extend(other.failed)
        return self

    def as_dict(self) -> dict:
        return {
            "customers": self.customers,
            "written": self.written,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "conflicts": self.conflicts,
            "calls": self.calls,
            "failed": len(self.failed),
        }


@dataclass
class SweepReport(SyncReport):
    pages: int = 0
    verified: int = 0  # customers whose Shopify copy was read back
    drift_found: int = 0  # metafields that differed in Shopify from what we last wrote


# --- locking and Shopify plumbing ----------------------------------------------------------------


class SyncBusy(ShopifyError):
    """Another worker holds this shop's sync lock for too long; retry later."""

    def __init__(self):
        super().__init__(retryable=True, detail="metafield sync lock busy")


class _ShopLock:
    """A session-level advisory lock per shop (re-entrant in one session; not a transaction)."""

    def __init__(self, merchant_id: str):
        self.key = f"loyalnest:metafields:{merchant_id}"
        self.enabled = connection.vendor == "postgresql"

    def __enter__(self):
        if not self.enabled:
            return self
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [self.key])
                if cursor.fetchone()[0]:
                    return self
            if time.monotonic() > deadline:
                raise SyncBusy()
            time.sleep(0.1)

    def __exit__(self, *exc):
        if self.enabled:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [self.key])


@dataclass
class _Shop:
    merchant: Merchant
    token: str

    def call(self, query: str, variables: dict, *, user_errors_at: str | None = None, cost: float = 10) -> dict:
        try:
            return graphql(
                shop_domain=self.merchant.shop_domain,
                access_token=self.token,
                query=query,
                variables=variables,
                user_errors_at=user_errors_at,
                estimated_cost=cost,
            )
        except ShopifyAuthError:
            installation_mark_needs_reauth(merchant=self.merchant)
            raise


def _connect(merchant) -> _Shop:
    return _Shop(merchant=merchant, token=access_token_for(merchant=merchant))


@dataclass
class _Current:
    """What Shopify holds for one metafield as far as we know: value and digest (None: absent)."""

    value: str | None
    digest: str | None


def _read_current(shop: _Shop, rows: list[LedgerRow]) -> dict[str, dict[str, _Current]]:
    """Shopify's current value and digest of every key of these customers (id → key → current)."""
    current: dict[str, dict[str, _Current]] = {}
    for start in range(0, len(rows), READ_BATCH):
        batch = rows[start : start + READ_BATCH]
        by_gid = {customer_gid(row.shopify_customer_id): row.customer_id for row in batch}
        data = shop.call(CUSTOMER_METAFIELDS_READ, {"ids": list(by_gid)}, cost=_read_cost(len(batch)))
        for node in data.get("nodes") or []:
            if not node or node.get("id") not in by_gid:
                continue
            current[by_gid[node["id"]]] = {
                key: _Current(
                    value=(node.get(key) or {}).get("value"), digest=(node.get(key) or {}).get("compareDigest")
                )
                for key in CUSTOMER_KEYS
            }
    return current


def _stored_copies(merchant, customer_ids: list[str]) -> dict[tuple[str, str], MetafieldCopy]:
    with merchant_scope(merchant):
        return {
            (copy.customer_id, copy.key): copy
            for copy in MetafieldCopy.objects.filter(
                merchant=merchant, customer_id__in=customer_ids, key__in=CUSTOMER_KEYS
            )
        }


@transaction.atomic
def _copies_save(merchant, *, stored: list[tuple[str, str, str, str]], removed: list[tuple[str, str]]) -> None:
    """Record what Shopify now holds: (customer, key, value, digest) upserted, (customer, key) removed."""
    with merchant_scope(merchant):
        now = timezone.now()
        if stored:
            MetafieldCopy.objects.bulk_create(
                [
                    MetafieldCopy(
                        merchant=merchant, customer_id=cid, key=key, value=value, compare_digest=digest, synced_at=now
                    )
                    for cid, key, value, digest in stored
                ],
                update_conflicts=True,
                unique_fields=["customer", "key"],
                update_fields=["value", "compare_digest", "synced_at"],
            )
        for cid, key in removed:
            MetafieldCopy.objects.filter(merchant=merchant, customer_id=cid, key=key).delete()


@transaction.atomic
def _audit_sync(merchant, report: SyncReport) -> None:
    if report.written or report.deleted or report.failed:
        with merchant_scope(merchant):
            audit_record(merchant=merchant, action="metafields_synced", metadata=report.as_dict())
