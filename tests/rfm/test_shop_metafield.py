"""The shop metafield `$app:loyalnest.rfm_benchmarks`: the active thresholds, written to (fake) Shopify."""

import json

from apps.core.tenancy import merchant_scope
from apps.rfm import services
from apps.rfm.shop_metafield import rfm_benchmarks_metafield_write
from tests.fakes.shopify_ops_metafields import metafield_get
from tests.shopify_helpers import shopify_connect


def test_the_active_thresholds_are_written_in_the_seeds_shape(merchant, other_merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    with merchant_scope(merchant):
        services.rfm_thresholds_update(
            merchant=merchant,
            industry="Pet Store",
            thresholds={"recency": "<=14", "frequency": ">=5", "monetary": ">500"},
        )
        latest = services.rfm_thresholds_update(merchant=merchant, industry="pet_store", thresholds={"recency": "<=10"})

    digest = rfm_benchmarks_metafield_write(merchant=merchant)

    shop_gid = fake_shopify.shop(merchant.shop_domain).gid
    stored = metafield_get(fake_shopify, merchant.shop_domain, shop_gid, "rfm_benchmarks")
    assert stored["type"] == "json" and digest
    value = json.loads(stored["value"])
    assert value["benchmark_id"] == latest.pk and value["industry"] == "pet_store"
    assert value["segment_name"] == "Champions"
    assert value["thresholds"] == {"recency": "<=10", "frequency": ">=5", "monetary": ">500"}
    assert value["levels"]["recency"] == {"5": "<=10", "4": "<=30", "3": "<=60", "2": "<=120"}
    assert metafield_get(fake_shopify, other_merchant["merchant"].shop_domain, shop_gid, "rfm_benchmarks") is None


def test_nothing_is_written_before_the_first_thresholds(merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)

    assert rfm_benchmarks_metafield_write(merchant=merchant) is None
    assert not fake_shopify.calls_of("ShopMetafieldsSet")
