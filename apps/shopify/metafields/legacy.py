"""Retiring the public `loyalnest` namespace (issue 9): a one-off per shop, safe to repeat.

Until issue 9 every LoyalNest metafield lived in the public namespace `loyalnest`, which other
apps, staff and translations can change — and the theme app extension rendered it. Everything
is now written to the app-owned `$app:loyalnest` (spec.NAMESPACE). For a shop installed before,
`legacy_namespace_retire`:

1. runs the customer sweep with the verification pass: it reads every customer's copies in the
   new namespace, finds them missing and writes them (compareDigest null: "must not exist yet");
   the daily verification beat would do the same within a day, this does it now;
2. rewrites the shop configuration (`shop_config_sync`) and queues the shop metafields the
   feature apps own (RFM benchmarks, referral link, Slack community — each registered with
   `register_shop_metafield_writer`), all from PostgreSQL, never copied from the public values;
3. deletes the public copies with `metafieldsDelete`: every customer key of every (not redacted)
   customer, and every shop metafield left in the `loyalnest` namespace. Deleting one that does
   not exist answers `null` and is not an error, so a second run changes nothing.

`manage.py metafields_namespace_migrate` queues it for every installed shop (docs/OPERATIONS.md).
"""

import logging

from django.db import transaction

from apps.core.audit import audit_record
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.tenancy import merchant_scope

from .plumbing import _connect, _Shop, _ShopLock
from .selectors import _customer_page
from .spec import CUSTOMER_KEYS, DELETE_COST, LEGACY_NAMESPACE, MAX_METAFIELDS_PER_CALL, customer_gid
from .sync import _shop_gid, customer_metafields_sweep, shop_config_sync

logger = logging.getLogger(__name__)

LEGACY_SHOP_METAFIELDS_READ = """
query LegacyShopMetafields($namespace: String!) {
  shop { metafields(namespace: $namespace, first: 250) { nodes { key } } }
}
"""

LEGACY_METAFIELDS_DELETE = """
mutation LegacyMetafieldsDelete($metafields: [MetafieldIdentifierInput!]!) {
  metafieldsDelete(metafields: $metafields) {
    deletedMetafields { ownerId namespace key }
    userErrors { field message }
  }
}
"""

CUSTOMER_PAGE = 250

# Feature apps that write shop metafields of their own register the Celery task that rewrites
# them from PostgreSQL (called with `merchant_id=`), from their AppConfig.ready().
_shop_metafield_writers: dict[str, object] = {}


def register_shop_metafield_writer(task) -> None:
    _shop_metafield_writers[task.name] = task


def legacy_namespace_retire(*, merchant) -> dict:
    """Fill the app-owned namespace for this shop, then delete its public `loyalnest` copies.

    Raises ShopifyAuthError (re-authorise) or a retryable ShopifyError; rerunning is safe.
    """
    sweep = customer_metafields_sweep(merchant=merchant, verify_shopify=True)
    shop_config_sync(merchant=merchant)
    for _name, task in sorted(_shop_metafield_writers.items()):
        enqueue_unless_broker_down(task, kwargs={"merchant_id": merchant.pk})  # a dead broker is logged
    deleted = _delete_legacy_customer_copies(merchant) + _delete_legacy_shop_copies(merchant)
    result = {"swept": sweep.as_dict(), "legacy_deleted": deleted}
    with transaction.atomic(), merchant_scope(merchant):
        audit_record(merchant=merchant, action="metafields_legacy_namespace_retired", metadata=result)
    return result


def _delete(shop: _Shop, identifiers: list[dict]) -> int:
    """metafieldsDelete, 25 identifiers a call; returns how many existed (missing ones answer null)."""
    deleted = 0
    for start in range(0, len(identifiers), MAX_METAFIELDS_PER_CALL):
        data = shop.call(
            LEGACY_METAFIELDS_DELETE,
            {"metafields": identifiers[start : start + MAX_METAFIELDS_PER_CALL]},
            user_errors_at="metafieldsDelete.userErrors",
            cost=DELETE_COST,
        )
        deleted += sum(1 for item in data["metafieldsDelete"]["deletedMetafields"] or [] if item)
    return deleted


def _delete_legacy_customer_copies(merchant) -> int:
    deleted, after = 0, ""
    while True:
        page = _customer_page(merchant, after, CUSTOMER_PAGE)
        if not page:
            return deleted
        identifiers = [
            {"ownerId": customer_gid(shopify_id), "namespace": LEGACY_NAMESPACE, "key": key}
            for _cid, shopify_id in page
            for key in CUSTOMER_KEYS
        ]
        with _ShopLock(merchant.pk):  # a fresh token per page, as the sweep does
            deleted += _delete(_connect(merchant), identifiers)
        after = page[-1][1]


def _delete_legacy_shop_copies(merchant) -> int:
    with _ShopLock(merchant.pk):
        shop = _connect(merchant)
        owner = _shop_gid(merchant, shop)
        data = shop.call(LEGACY_SHOP_METAFIELDS_READ, {"namespace": LEGACY_NAMESPACE}, cost=3)
        keys = [node["key"] for node in ((data.get("shop") or {}).get("metafields") or {}).get("nodes") or []]
        if not keys:
            return 0
        return _delete(shop, [{"ownerId": owner, "namespace": LEGACY_NAMESPACE, "key": key} for key in keys])
