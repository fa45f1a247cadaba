"""The shop metafield `merchant_referral` (the seeds' example, in LoyalNest's app-owned namespace
`$app:loyalnest`) written after a link is made."""

import json

from apps.merchant_referrals.tasks import merchant_referral_metafield_task
from tests.shopify_helpers import shopify_connect


def test_the_link_is_written_to_the_advocates_shop(link, advocate, other_merchant, fake_shopify):
    shopify_connect(fake_shopify, advocate)
    shopify_connect(fake_shopify, other_merchant["merchant"])

    digest = merchant_referral_metafield_task.apply(kwargs={"merchant_id": advocate.pk}).get()

    [(shop, variables)] = fake_shopify.calls_of("ShopMetafieldsSet")
    assert shop == advocate.shop_domain and digest
    [metafield] = variables["metafields"]
    assert (metafield["namespace"], metafield["key"], metafield["type"]) == (
        "$app:loyalnest",
        "merchant_referral",
        "json",
    )
    assert metafield["ownerId"] == fake_shopify.shop(advocate.shop_domain).gid
    assert json.loads(metafield["value"]) == {
        "referral_code": link.code,
        "reward_id": "1_month_free",
        "status": "active",
        "url": f"http://127.0.0.1:8000/r/{link.code}",
    }


def test_a_shop_without_a_link_gets_nothing(advocate, fake_shopify):
    shopify_connect(fake_shopify, advocate)

    assert merchant_referral_metafield_task.apply(kwargs={"merchant_id": advocate.pk}).get() is None
    assert not fake_shopify.calls_of("ShopMetafieldsSet")
