"""The LoyalNest metafields: namespace, keys, types, GraphQL documents and their costs."""

import logging
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)


# The app-owned (reserved) namespace: only LoyalNest can write it; merchants can read it, other
# apps, staff and translations cannot change it, so the theme app extension may render it
# (https://shopify.dev/docs/apps/build/security/storefront/store-settings-in-app-owned-metafields).
# Every writer (customer copies, shop config, multi-store, RFM, referrals, Slack) uses it. Shopify
# resolves `$app:loyalnest` to `app--{app id}--loyalnest` and answers with that form; Liquid reads
# `customer.metafields['$app:loyalnest'].points_balance`.
NAMESPACE = "$app:loyalnest"
# The public namespace used before: copies left there are deleted by `metafields_namespace_migrate`.
LEGACY_NAMESPACE = "loyalnest"
_RESOLVED = re.compile(r"app--\d+--loyalnest")
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


def namespace_is_ours(namespace: str | None) -> bool:
    """True for LoyalNest's app-owned namespace as sent (`$app:loyalnest`) or as Shopify answers
    it (`app--{app id}--loyalnest`); False for the legacy public `loyalnest` and anything else."""
    return namespace == NAMESPACE or bool(_RESOLVED.fullmatch(namespace or ""))


def customer_gid(shopify_customer_id: str) -> str:
    return f"gid://shopify/Customer/{shopify_customer_id}"
