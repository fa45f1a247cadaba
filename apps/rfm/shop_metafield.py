"""The shop metafield `$app:loyalnest.rfm_benchmarks` (json): the merchant's active thresholds in
the seeds' shape, written with Shopify's `metafieldsSet` (the whole value each time, so the
latest version always lands last)."""

import json

from apps.core.tenancy import merchant_scope
from apps.shopify.graphql import graphql
from apps.shopify.metafields.spec import NAMESPACE, SET_COST, SHOP_ID_QUERY, SHOP_METAFIELDS_SET
from apps.shopify.models import ShopifyInstallation
from apps.shopify.tokens import access_token_for

from .selectors import rfm_benchmark_active

KEY = "rfm_benchmarks"


def rfm_benchmarks_metafield_write(*, merchant) -> str | None:
    """Write the active thresholds to the shop; returns Shopify's compareDigest (None: nothing to write)."""
    from .services import rfm_benchmark_state

    with merchant_scope(merchant):
        benchmark = rfm_benchmark_active(merchant=merchant)
        installation = ShopifyInstallation.objects.get(merchant=merchant)
    if benchmark is None:
        return None
    token = access_token_for(merchant=merchant)

    def call(query, variables, **kwargs):
        return graphql(shop_domain=merchant.shop_domain, access_token=token, query=query, variables=variables, **kwargs)

    owner = installation.shop_gid or call(SHOP_ID_QUERY, {}, estimated_cost=1)["shop"]["id"]
    value = json.dumps(rfm_benchmark_state(benchmark), sort_keys=True, separators=(",", ":"))
    data = call(
        SHOP_METAFIELDS_SET,
        {"metafields": [{"ownerId": owner, "namespace": NAMESPACE, "key": KEY, "type": "json", "value": value}]},
        user_errors_at="metafieldsSet.userErrors",
        estimated_cost=SET_COST,
    )
    written = data["metafieldsSet"]["metafields"]
    return written[0]["compareDigest"] if written else None
