"""Shopify metafield copies of the loyalty ledger (RELIABILITY C6).

PostgreSQL is the truth; each customer's `loyalnest` metafields in Shopify are copies that
converge to it:

| key                  | type                    | value                                               |
|----------------------|-------------------------|-----------------------------------------------------|
| `points_balance`     | `number_integer`        | `users.points_balance`                              |
| `vip_tier`           | `single_line_text_field`| the tier's English name (Liquid and Flow conditions |
|                      |                         | read a word, not an id); absent below the 1st tier  |
| `churn_score`        | `number_decimal`        | `users.churn_score`, 4 decimals; absent when unset  |
| `lifecycle_stage`    | `single_line_text_field`| `users.lifecycle_stage` (`new_lead`, `vip`, …)      |
| `shared_customer_id` | `single_line_text_field`| `users.shared_customer_id`; absent outside a group  |

`leaderboard_score` and `wallet_export` (also named by the specification) belong to the
gamification and wallet apps, which write them themselves.

Writes go through `metafieldsSet`, at most 25 metafields a call, each with the `compareDigest`
of the copy we last wrote (`null` when we never wrote one: "must not exist yet"). Shopify
refuses a stale digest (`STALE_OBJECT`): someone changed the metafield behind our back. We
then read the current values and digests, and write again with the fresh digest — the ledger
wins. What we wrote, and Shopify's new digest, is kept in `shopify_metafield_copies`.

The sweep finds, with one keyset-paginated SQL query per page, the customers whose copy is
missing or differs from the ledger and syncs them. The daily verification pass also reads the
copies back from Shopify, so a copy edited in Shopify behind our back is found and overwritten
even when the ledger did not move.

All syncs of one shop are serialised by a PostgreSQL advisory lock (not a transaction: no
transaction is ever open across a Shopify call), so two workers never race to write older
values; Shopify's cost bucket is per shop anyway.
"""

import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from celery import shared_task
from django.db import connection, transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.models import Customer, Merchant, ProgramSettings
from apps.core.tenancy import merchant_scope, scopes_disabled

from .flow import TRIGGER_TIER_CHANGED, flow_trigger_fire
from .graphql import ShopifyAuthError, ShopifyError, ShopifyUserError, graphql
from .models import MetafieldCopy, ShopifyInstallation
from .tokens import access_token_for, installation_mark_needs_reauth

logger = logging.getLogger(__name__)

NAMESPACE = "loyalnest"
MAX_METAFIELDS_PER_CALL = 25  # Shopify's limit for metafieldsSet
READ_BATCH = 25  # customers per read of current values
SWEEP_PAGE = 250  # customers per sweep page (10 metafieldsSet calls at most)
CONFLICT_ROUNDS = 3  # re-read and rewrite rounds before a conflict is left to the next sweep
LOCK_WAIT_SECONDS = 30.0
STALE_CODES = frozenset({"STALE_OBJECT", "INVALID_COMPARE_DIGEST"})


@dataclass(frozen=True)
class MetafieldSpec:
    key: str
    type: str


CUSTOMER_METAFIELDS = (
    MetafieldSpec("points_balance", "number_integer"),
    MetafieldSpec("vip_tier", "single_line_text_field"),
    MetafieldSpec("churn_score", "number_decimal"),
    MetafieldSpec("lifecycle_stage", "single_line_text_field"),
    MetafieldSpec("shared_customer_id", "single_line_text_field"),
)
CUSTOMER_KEYS = tuple(spec.key for spec in CUSTOMER_METAFIELDS)
TYPES = {spec.key: spec.type for spec in CUSTOMER_METAFIELDS}

# Program settings written as json metafields on the shop (read by the theme app extension).
SHOP_CONFIG_KEYS = ("multi_store_config", "theme_extension_config")

CUSTOMER_METAFIELDS_SET = """
mutation CustomerMetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { key namespace value compareDigest owner { ... on Customer { id } } }
    userErrors { field message code elementIndex }
  }
}
"""

SHOP_METAFIELDS_SET = """
mutation ShopMetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { key namespace compareDigest }
    userErrors { field message code elementIndex }
  }
}
"""

CUSTOMER_METAFIELDS_DELETE = """
mutation CustomerMetafieldsDelete($metafields: [MetafieldIdentifierInput!]!) {
  metafieldsDelete(metafields: $metafields) {
    deletedMetafields { ownerId namespace key }
    userErrors { field message }
  }
}
"""

CUSTOMER_METAFIELDS_READ = (
    "query CustomerMetafieldsRead($ids: [ID!]!) {\n  nodes(ids: $ids) {\n    ... on Customer {\n      id\n"
    + "".join(
        f'      {key}: metafield(namespace: "{NAMESPACE}", key: "{key}") {{ value compareDigest }}\n'
        for key in CUSTOMER_KEYS
    )
    + "    }\n  }\n}\n"
)

SHOP_ID_QUERY = "query ShopIdentity { shop { id } }"

# Requested costs (Shopify charges the requested cost up front and refunds the difference).
SET_COST = 10
DELETE_COST = 10


def _read_cost(customers: int) -> int:
    return 1 + customers * (1 + len(CUSTOMER_KEYS))


def customer_gid(shopify_customer_id: str) -> str:
    return f"gid://shopify/Customer/{shopify_customer_id}"


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
        row[0]: LedgerRow(customer_id=row[0], shopify_customer_id=row[1], values=dict(zip(CUSTOMER_KEYS, row[2:], strict=True)))
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


# --- the sync ------------------------------------------------------------------------------------


def customer_metafields_sync(*, merchant, customers: Iterable) -> SyncReport:
    """Make these customers' `loyalnest` metafields in Shopify equal the ledger.

    `customers` are Customer rows or ids; customers of another merchant are ignored. Raises
    ShopifyAuthError when the shop must re-authorise and a retryable ShopifyError when Shopify
    is unavailable (what was written before is recorded and skipped by the retry).
    """
    ids = list(dict.fromkeys(getattr(c, "pk", c) for c in customers))
    with _ShopLock(merchant.pk):
        return _sync_locked(merchant, _connect(merchant), ids, observed=None)


def _sync_locked(merchant, shop: _Shop, ids: list[str], observed: dict | None) -> SyncReport:
    report = SyncReport()
    ledger = _ledger_values(merchant.pk, ids)
    report.customers = len(ledger)
    if not ledger:
        return report
    copies = _stored_copies(merchant, list(ledger))
    # What Shopify holds as far as we know: our copies, or what was just read back from Shopify.
    current: dict[str, dict[str, _Current]] = {
        cid: {
            key: (
                _Current(copies[(cid, key)].value, copies[(cid, key)].compare_digest or None)
                if (cid, key) in copies
                else _Current(None, None)
            )
            for key in CUSTOMER_KEYS
        }
        for cid in ledger
    }
    if observed:
        current.update({cid: values for cid, values in observed.items() if cid in current})

    pending = set(ledger)  # customers not yet in line with the ledger
    for round_number in range(CONFLICT_ROUNDS + 1):
        stale = _sync_round(merchant, shop, ledger, copies, current, pending, report)
        if not stale:
            break
        report.conflicts += len(stale)
        if round_number == CONFLICT_ROUNDS:
            report.failed.extend((cid, key, "STALE_OBJECT") for cid, key in sorted(stale))
            break
        # Someone wrote behind our back: take the fresh ledger and Shopify's current digests.
        stale_ids = sorted({cid for cid, _key in stale})
        ledger.update(_ledger_values(merchant.pk, stale_ids))
        current.update(_read_current(shop, [ledger[cid] for cid in stale_ids if cid in ledger]))
        pending = set(stale_ids)
    _audit_sync(merchant, report)
    return report


def _sync_round(merchant, shop, ledger, copies, current, pending, report) -> set[tuple[str, str]]:
    """Write what differs for the pending customers; return the (customer, key) pairs refused as stale."""
    writes, deletes, adopt = [], [], []
    for cid in sorted(pending):
        row = ledger[cid]
        for key in CUSTOMER_KEYS:
            want, have = row.values[key], current[cid][key]
            copy = copies.get((cid, key))
            if want is None:
                if have.value is not None:
                    deletes.append((cid, key))
                elif copy is not None:
                    adopt.append(("remove", cid, key, None, None))
            elif have.value != want:
                writes.append((cid, key, want, have.digest))
            elif copy is None or copy.value != want or (have.digest and copy.compare_digest != have.digest):
                # Shopify already holds the ledger's value (read back): record it, write nothing.
                adopt.append(("store", cid, key, want, have.digest))
            else:
                report.unchanged += 1

    stale: set[tuple[str, str]] = set()
    for start in range(0, len(writes), MAX_METAFIELDS_PER_CALL):
        stale |= _write_batch(
            merchant, shop, ledger, copies, current, writes[start : start + MAX_METAFIELDS_PER_CALL], report
        )
    for start in range(0, len(deletes), MAX_METAFIELDS_PER_CALL):
        _delete_batch(merchant, shop, ledger, current, deletes[start : start + MAX_METAFIELDS_PER_CALL], report)
    if adopt:
        _copies_save(
            merchant,
            stored=[(cid, key, value, digest or "") for kind, cid, key, value, digest in adopt if kind == "store"],
            removed=[(cid, key) for kind, cid, key, _v, _d in adopt if kind == "remove"],
        )
    return stale


def _write_batch(merchant, shop, ledger, copies, current, batch, report) -> set[tuple[str, str]]:
    """One metafieldsSet call (≤ 25). Shopify applies all or nothing: on userErrors, entries that
    were stale are returned for a re-read, invalid ones are set aside, and the rest is resent."""
    stale: set[tuple[str, str]] = set()
    while batch:
        inputs = [
            {
                "ownerId": customer_gid(ledger[cid].shopify_customer_id),
                "namespace": NAMESPACE,
                "key": key,
                "type": TYPES[key],
                "value": value,
                "compareDigest": digest,
            }
            for cid, key, value, digest in batch
        ]
        report.calls += 1
        try:
            data = shop.call(
                CUSTOMER_METAFIELDS_SET,
                {"metafields": inputs},
                user_errors_at="metafieldsSet.userErrors",
                cost=SET_COST,
            )
        except ShopifyUserError as refused:
            rejected = _rejected_indexes(refused, len(batch))
            for index, code in rejected.items():
                cid, key = batch[index][0], batch[index][1]
                if code in STALE_CODES:
                    stale.add((cid, key))
                else:
                    logger.warning("metafield %s refused by Shopify: %s", key, code)
                    report.failed.append((cid, key, code))
            batch = [entry for index, entry in enumerate(batch) if index not in rejected]
            continue
        written = {
            (metafield["owner"]["id"], metafield["key"]): metafield
            for metafield in data["metafieldsSet"]["metafields"]
            if metafield.get("owner")
        }
        stored = []
        for cid, key, value, _digest in batch:
            metafield = written.get((customer_gid(ledger[cid].shopify_customer_id), key))
            digest = (metafield or {}).get("compareDigest") or ""
            stored.append((cid, key, value, digest))
            current[cid][key] = _Current(value, digest or None)
        _copies_save(merchant, stored=stored, removed=[])
        report.written += len(stored)
        _fire_tier_changes(merchant, ledger, copies, stored)
        for cid, key, value, digest in stored:
            copies[(cid, key)] = MetafieldCopy(customer_id=cid, key=key, value=value, compare_digest=digest)
        break
    return stale


def _rejected_indexes(refused: ShopifyUserError, size: int) -> dict[int, str]:
    """Which inputs Shopify refused (by elementIndex, or the index in `field`); all of them when
    Shopify does not say (e.g. a limit on the whole input) — never a silent resend loop."""
    rejected = {}
    for error in refused.user_errors:
        index = error.get("elementIndex")
        if index is None:
            path = error.get("field") or []
            index = int(path[1]) if len(path) > 1 and str(path[1]).isdigit() else None
        code = str(error.get("code") or "INVALID")
        if index is None or not 0 <= int(index) < size:
            return dict.fromkeys(range(size), code)
        rejected[int(index)] = code
    return rejected


def _delete_batch(merchant, shop, ledger, current, batch, report) -> None:
    """Remove metafields whose ledger value is gone (no tier any more, churn score cleared…)."""
    inputs = [
        {"ownerId": customer_gid(ledger[cid].shopify_customer_id), "namespace": NAMESPACE, "key": key}
        for cid, key in batch
    ]
    report.calls += 1
    shop.call(
        CUSTOMER_METAFIELDS_DELETE,
        {"metafields": inputs},
        user_errors_at="metafieldsDelete.userErrors",
        cost=DELETE_COST,
    )
    for cid, key in batch:
        current[cid][key] = _Current(None, None)
    _copies_save(merchant, stored=[], removed=list(batch))
    report.deleted += len(batch)


def _fire_tier_changes(merchant, ledger, copies, stored) -> None:
    """A VIP tier copy that moved from one value we wrote to another is a tier change Flow can see."""
    for cid, key, value, _digest in stored:
        previous = copies.get((cid, key))
        if key != "vip_tier" or previous is None or previous.value == value:
            continue
        flow_trigger_fire(
            merchant=merchant,
            handle=TRIGGER_TIER_CHANGED,
            payload={
                "customer_id": int(ledger[cid].shopify_customer_id),
                "Previous tier": previous.value,
                "New tier": value,
                "Points balance": int(ledger[cid].values["points_balance"]),
            },
        )


# --- the sweep -----------------------------------------------------------------------------------


def customer_metafields_sweep(*, merchant, verify_shopify: bool = False, page_size: int = SWEEP_PAGE) -> SweepReport:
    """Sync every customer whose copy is missing or differs from the ledger.

    With `verify_shopify`, first read every customer's copies back from Shopify and overwrite the
    ones changed there behind our back (the daily pass). Afterwards every copy equals the ledger,
    except what `failed` lists (refused values; conflicts still racing after three rounds).
    """
    report = SweepReport()
    if verify_shopify:
        _verify_pass(merchant, report)
    after = ""
    while True:
        page = customer_metafields_drifted_page(merchant=merchant, after=after, limit=page_size)
        if not page:
            break
        report.pages += 1
        with _ShopLock(merchant.pk):  # a fresh token per page: a long sweep outlives an access token
            report.add(_sync_locked(merchant, _connect(merchant), [cid for cid, _sid in page], observed=None))
        after = page[-1][1]
    with merchant_scope(merchant):
        audit_record(
            merchant=merchant,
            action="metafields_swept",
            metadata={**report.as_dict(), "verified": report.verified, "drift_found": report.drift_found},
        )
    return report


def _verify_pass(merchant, report: SweepReport) -> None:
    after = ""
    while True:
        page = _customer_page(merchant, after, READ_BATCH * 4)
        if not page:
            return
        ids = [cid for cid, _sid in page]
        with _ShopLock(merchant.pk):
            shop = _connect(merchant)
            ledger = _ledger_values(merchant.pk, ids)
            observed = _read_current(shop, list(ledger.values()))
            copies = _stored_copies(merchant, ids)
            report.verified += len(observed)
            drifted = {}
            for cid, values in observed.items():
                for key, seen in values.items():
                    copy = copies.get((cid, key))
                    ours = _Current(copy.value, copy.compare_digest or None) if copy else _Current(None, None)
                    if (seen.value, seen.digest) != (ours.value, ours.digest):
                        report.drift_found += 1
                        drifted[cid] = values
            if drifted:
                report.add(_sync_locked(merchant, shop, list(drifted), observed=drifted))
        after = page[-1][1]


# --- shop-level configuration ------------------------------------------------------------------


def _shop_gid(merchant, shop: _Shop) -> str:
    with merchant_scope(merchant):
        installation = ShopifyInstallation.objects.get(merchant=merchant)
    if installation.shop_gid:
        return installation.shop_gid
    gid = shop.call(SHOP_ID_QUERY, {}, cost=1)["shop"]["id"]
    with transaction.atomic(), merchant_scope(merchant):
        ShopifyInstallation.objects.filter(merchant=merchant).update(shop_gid=gid)
    return gid


def shop_config_sync(*, merchant) -> dict:
    """Write the program settings the storefront reads (`multi_store_config`,
    `theme_extension_config`) as json metafields on the shop; returns {key: compareDigest}.

    The whole object is rewritten from PostgreSQL each time, under the shop's sync lock with the
    settings read inside it, so the latest settings always land last; no compareDigest.
    """
    shop = _connect(merchant)
    with _ShopLock(merchant.pk):
        owner = _shop_gid(merchant, shop)
        with merchant_scope(merchant):
            program = ProgramSettings.objects.filter(merchant=merchant).first()
        inputs = [
            {
                "ownerId": owner,
                "namespace": NAMESPACE,
                "key": key,
                "type": "json",
                "value": json.dumps(getattr(program, key, None) or {}, sort_keys=True, separators=(",", ":")),
            }
            for key in SHOP_CONFIG_KEYS
        ]
        data = shop.call(
            SHOP_METAFIELDS_SET, {"metafields": inputs}, user_errors_at="metafieldsSet.userErrors", cost=SET_COST
        )
    digests = {m["key"]: m["compareDigest"] for m in data["metafieldsSet"]["metafields"]}
    with transaction.atomic(), merchant_scope(merchant):
        audit_record(merchant=merchant, action="shop_config_synced", metadata={"keys": sorted(digests)})
    return digests


# --- Celery tasks (thin: ids in, one service call) -------------------------------------------------


def _merchant(merchant_id: str) -> Merchant | None:
    return Merchant.objects.filter(pk=merchant_id, is_installed=True).first()


@shared_task(bind=True, acks_late=True, max_retries=5)
def customer_metafields_sync_task(self, *, merchant_id: str, customer_ids: list[str]) -> dict | None:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    try:
        return customer_metafields_sync(merchant=merchant, customers=customer_ids).as_dict()
    except ShopifyAuthError:
        logger.warning("metafield sync of %s stopped: the shop must re-authorise", merchant_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries)) from exc


@shared_task(bind=True, acks_late=True, max_retries=3)
def customer_metafields_sweep_task(self, *, merchant_id: str, verify_shopify: bool = False) -> dict | None:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    try:
        report = customer_metafields_sweep(merchant=merchant, verify_shopify=verify_shopify)
        if verify_shopify:
            shop_config_sync(merchant=merchant)
        return report.as_dict()
    except ShopifyAuthError:
        logger.warning("metafield sweep of %s stopped: the shop must re-authorise", merchant_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries)) from exc


@shared_task(bind=True, acks_late=True, max_retries=5)
def shop_config_sync_task(self, *, merchant_id: str) -> None:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return
    try:
        shop_config_sync(merchant=merchant)
    except ShopifyAuthError:
        logger.warning("shop config sync of %s stopped: the shop must re-authorise", merchant_id)
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise self.retry(exc=exc, countdown=_retry_delay(self.request.retries)) from exc


@shared_task(acks_late=True)
def customer_metafields_sweep_all_task(*, verify_shopify: bool = False) -> int:
    """Beat: one sweep task per installed shop with usable tokens."""
    with scopes_disabled():
        merchant_ids = list(
            ShopifyInstallation.objects.filter(merchant__is_installed=True, needs_reauth=False).values_list(
                "merchant_id", flat=True
            )
        )
    for merchant_id in merchant_ids:
        customer_metafields_sweep_task.delay(merchant_id=merchant_id, verify_shopify=verify_shopify)
    return len(merchant_ids)


def _retry_delay(retries: int) -> float:
    return min(600, 10 * 2**retries) * random.uniform(0.5, 1.0)  # noqa: S311  (jitter)
