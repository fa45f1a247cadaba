"""Issue 9: LoyalNest's metafields live in the app-owned namespace `$app:loyalnest`."""

import pytest

from apps.core.models import Customer
from apps.shopify.metafields import (
    NAMESPACE,
    customer_gid,
    customer_metafields_sync,
    namespace_is_ours,
)
from apps.shopify.models import MetafieldCopy
from tests.factories import CustomerFactory, VipTierFactory
from tests.fakes.shopify_ops_metafields import APP_ID, metafields_of
from tests.shopify_helpers import shopify_connect

RESOLVED = f"app--{APP_ID}--loyalnest"


@pytest.fixture
def shop(merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    return merchant


def test_the_namespace_is_recognised_as_sent_and_as_shopify_answers_it():
    assert NAMESPACE == "$app:loyalnest"
    assert namespace_is_ours("$app:loyalnest") and namespace_is_ours(RESOLVED)
    assert namespace_is_ours("app--1--loyalnest")
    for other in ("loyalnest", "$app", f"app--{APP_ID}", f"{RESOLVED}x", f"app--{APP_ID}--other", "custom", None):
        assert not namespace_is_ours(other), other


def test_customer_metafields_are_written_app_owned_and_recorded_with_the_resolved_answer(shop, fake_shopify):
    gold = VipTierFactory(merchant=shop, name={"en": "Gold"}, min_lifetime_points=0)
    customers = CustomerFactory.create_batch(6, merchant=shop, points_balance=30, vip_tier=gold)

    report = customer_metafields_sync(merchant=shop, customers=customers)

    sent = [m for _shop, v in fake_shopify.calls_of("CustomerMetafieldsSet") for m in v["metafields"]]
    assert report.written == 18 and {m["namespace"] for m in sent} == {"$app:loyalnest"}
    assert metafields_of(fake_shopify, shop.shop_domain, "loyalnest") == {}  # nothing public
    stored = metafields_of(fake_shopify, shop.shop_domain, RESOLVED)
    assert len(stored) == 18  # points, tier, lifecycle stage
    # Shopify answered `app--{id}--loyalnest`: the digests of that answer are the ones recorded.
    for copy in MetafieldCopy.objects.filter(merchant=shop):
        gid = customer_gid(Customer.objects.get(pk=copy.customer_id).shopify_customer_id)
        assert copy.compare_digest == stored[(gid, copy.key)]["digest"] != ""
    assert customer_metafields_sync(merchant=shop, customers=customers).written == 0
