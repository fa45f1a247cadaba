"""The sync, the sweep and the shop-level configuration (see the package docstring)."""

import json
import logging
from collections.abc import Iterable

from django.db import transaction

from apps.core.audit import audit_record
from apps.core.models import ProgramSettings
from apps.core.tenancy import merchant_scope

from ..flow import TRIGGER_TIER_CHANGED, flow_trigger_fire
from ..graphql import ShopifyUserError
from ..models import MetafieldCopy, ShopifyInstallation
from .plumbing import (
    SweepReport,
    SyncReport,
    _audit_sync,
    _connect,
    _copies_save,
    _Current,
    _read_current,
    _Shop,
    _ShopLock,
    _stored_copies,
)
from .selectors import _customer_page, _ledger_values, customer_metafields_drifted_page
from .spec import (
    CONFLICT_ROUNDS,
    CUSTOMER_KEYS,
    CUSTOMER_METAFIELDS_DELETE,
    CUSTOMER_METAFIELDS_SET,
    DELETE_COST,
    MAX_METAFIELDS_PER_CALL,
    NAMESPACE,
    READ_BATCH,
    SET_COST,
    SHOP_CONFIG_KEYS,
    SHOP_ID_QUERY,
    SHOP_METAFIELDS_SET,
    STALE_CODES,
    SWEEP_PAGE,
    TYPES,
    customer_gid,
    namespace_is_ours,
)

logger = logging.getLogger(__name__)

# --- the sync ------------------------------------------------------------------------------------


def customer_metafields_sync(*, merchant, customers: Iterable) -> SyncReport:
    """Make these customers' LoyalNest metafields (app-owned `$app:loyalnest`) in Shopify equal the ledger.

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
        # Shopify answers with the resolved namespace (`app--{app id}--loyalnest`), not `$app:…`.
        written = {
            (metafield["owner"]["id"], metafield["key"]): metafield
            for metafield in data["metafieldsSet"]["metafields"]
            if metafield.get("owner") and namespace_is_ours(metafield.get("namespace"))
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
    digests = {
        m["key"]: m["compareDigest"]
        for m in data["metafieldsSet"]["metafields"]
        if namespace_is_ours(m.get("namespace"))
    }
    with transaction.atomic(), merchant_scope(merchant):
        audit_record(merchant=merchant, action="shop_config_synced", metadata={"keys": sorted(digests)})
    return digests
