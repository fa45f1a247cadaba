"""Cross-store comparison for store groups: stores that list each other, counts only."""

from apps.core.models import ProgramSettings
from apps.core.tenancy import merchant_scope
from apps.rfm import services
from tests.factories import MerchantFactory
from tests.shopify_helpers import auth_header, session_token

from .conftest import NOW, build_history


def _group(*merchants_and_lists):
    for merchant, listed in merchants_and_lists:
        ProgramSettings.objects.filter(merchant=merchant).update(
            multi_store_config={"shared_stores": [m.shop_domain for m in listed]}
        )


def _scored(merchant, customers, seed):
    build_history(merchant, customers=customers, seed=seed, prefix=f"s{seed}")
    with merchant_scope(merchant):
        services.rfm_scores_refresh(merchant=merchant, now=NOW)


def test_stores_that_list_each_other_are_compared_side_by_side(api, analyst, client):
    merchant = analyst.merchant
    sister = MerchantFactory(shop_domain="alpha-pets-eu.myshopify.com", name="Alpha Pets EU")
    stranger = MerchantFactory(shop_domain="gamma-toys.myshopify.com", name="Gamma Toys")
    _scored(merchant, 30, 21)
    _scored(sister, 20, 22)
    _scored(stranger, 10, 23)
    # The stranger is listed by Alpha but does not list Alpha back: a one-sided claim.
    _group((merchant, [sister, stranger]), (sister, [merchant]), (stranger, []))

    stores = api.get("/v1/api/rfm/stores", **auth_header(analyst)).json()["stores"]

    assert [s["shop_domain"] for s in stores] == [merchant.shop_domain, sister.shop_domain]
    assert stores[1]["scored"] == sum(g["count"] for g in stores[1]["distribution"]) > 0
    assert [g["key"] for g in stores[0]["distribution"]] == ["Champions", "Loyal", "At-Risk", "New", "Inactive"]
    html = client.get("/app/rfm/", {"id_token": session_token(merchant.shop_domain)}).content.decode()
    assert 'data-store="alpha-pets-eu.myshopify.com"' in html and "Gamma Toys" not in html


def test_a_store_outside_a_group_sees_only_itself(api, analyst, other_merchant):
    _group((other_merchant["merchant"], [analyst.merchant]))

    stores = api.get("/v1/api/rfm/stores", **auth_header(analyst)).json()["stores"]

    assert [s["shop_domain"] for s in stores] == [analyst.merchant.shop_domain]
