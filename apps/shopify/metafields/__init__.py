"""Shopify metafield copies of the loyalty ledger (RELIABILITY C6).

PostgreSQL is the truth; each customer's LoyalNest metafields in Shopify are copies that
converge to it. They live in the app-owned namespace `$app:loyalnest` (spec.NAMESPACE; Shopify
answers with its resolved form `app--{app id}--loyalnest`), which only LoyalNest can write, so
the theme app extension may render them; the public `loyalnest` namespace used before issue 9
is emptied by `legacy_namespace_retire` (legacy.py):

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

from .legacy import legacy_namespace_retire, register_shop_metafield_writer
from .plumbing import SweepReport, SyncBusy, SyncReport
from .selectors import _ledger_values, customer_metafields_drifted_page
from .spec import (
    CUSTOMER_KEYS,
    CUSTOMER_METAFIELDS,
    CUSTOMER_METAFIELDS_READ,
    LEGACY_NAMESPACE,
    MAX_METAFIELDS_PER_CALL,
    NAMESPACE,
    SHOP_CONFIG_KEYS,
    customer_gid,
    namespace_is_ours,
)
from .sync import customer_metafields_sweep, customer_metafields_sync, shop_config_sync
from .tasks import (
    customer_metafields_sweep_all_task,
    customer_metafields_sweep_task,
    customer_metafields_sync_task,
    legacy_namespace_retire_task,
    shop_config_sync_task,
)

__all__ = [
    "CUSTOMER_KEYS",
    "CUSTOMER_METAFIELDS",
    "CUSTOMER_METAFIELDS_READ",
    "LEGACY_NAMESPACE",
    "MAX_METAFIELDS_PER_CALL",
    "NAMESPACE",
    "SHOP_CONFIG_KEYS",
    "SweepReport",
    "SyncBusy",
    "SyncReport",
    "_ledger_values",
    "customer_gid",
    "customer_metafields_drifted_page",
    "customer_metafields_sweep",
    "customer_metafields_sweep_all_task",
    "customer_metafields_sweep_task",
    "customer_metafields_sync",
    "customer_metafields_sync_task",
    "legacy_namespace_retire",
    "legacy_namespace_retire_task",
    "namespace_is_ours",
    "register_shop_metafield_writer",
    "shop_config_sync",
    "shop_config_sync_task",
]
