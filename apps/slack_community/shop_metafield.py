"""The shop metafields of the seeds' examples, written with `metafieldsSet`:

- `$app:loyalnest.slack_community` (json): `{"slack_user_id": "U123", "status": "invited"}` — the
  merchant's first community member;
- `$app:loyalnest.slack_beta_features` (json): `{"rfm_advanced": true, "streaks": true}`.

The whole value is rewritten from PostgreSQL each time, so the latest state always lands last.
"""

import json

from apps.core.tenancy import merchant_scope
from apps.shopify.graphql import graphql
from apps.shopify.metafields.spec import NAMESPACE, SET_COST, SHOP_ID_QUERY, SHOP_METAFIELDS_SET
from apps.shopify.models import ShopifyInstallation
from apps.shopify.tokens import access_token_for

from .models import SlackCommunityMember
from .selectors import beta_features_get

COMMUNITY_KEY = "slack_community"
BETA_KEY = "slack_beta_features"


def _json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def slack_community_metafields_write(*, merchant) -> dict:
    """Write both metafields to the merchant's shop; returns {key: compareDigest} ({}: not a member)."""
    with merchant_scope(merchant):
        member = SlackCommunityMember.objects.filter(merchant=merchant).order_by("created_at", "pk").first()
        installation = ShopifyInstallation.objects.get(merchant=merchant)
    if member is None:
        return {}
    flags = beta_features_get(merchant=merchant)
    token = access_token_for(merchant=merchant)

    def call(query, variables, **kwargs):
        return graphql(shop_domain=merchant.shop_domain, access_token=token, query=query, variables=variables, **kwargs)

    owner = installation.shop_gid or call(SHOP_ID_QUERY, {}, estimated_cost=1)["shop"]["id"]
    values = {
        COMMUNITY_KEY: {"slack_user_id": member.slack_user_id, "status": member.status},
        BETA_KEY: flags,
    }
    metafields = [
        {"ownerId": owner, "namespace": NAMESPACE, "key": key, "type": "json", "value": _json(value)}
        for key, value in values.items()
    ]
    data = call(
        SHOP_METAFIELDS_SET,
        {"metafields": metafields},
        user_errors_at="metafieldsSet.userErrors",
        estimated_cost=SET_COST,
    )
    return {m["key"]: m["compareDigest"] for m in data["metafieldsSet"]["metafields"]}
