"""Shared referral codes: with referrals shared, a code from one member store is accepted (at the
app proxy) in every other member store, never in a store outside the group."""

import pytest

from apps.core.services import referral_link_get_or_create
from apps.multistore.services import group_sharing_update, shared_customers_link
from tests.factories import CustomerFactory
from tests.shopify_helpers import proxy_signed_query

from .conftest import plus_store


def lookup(api, shop, code, customer_id=None):
    return api.get(f"/proxy/v1/api/referral/{code}?{proxy_signed_query(shop.shop_domain, customer_id)}")


@pytest.fixture
def advocate(stores):
    (us, _), _eu, _jp = stores
    customer = CustomerFactory(
        merchant=us, shopify_customer_id="7001", email="ana@example.com", first_name="Ana", last_name="Silva"
    )
    return customer, referral_link_get_or_create(merchant=us, customer=customer)


def test_a_code_of_store_a_works_in_store_b_of_the_group_not_outside(api, group, stores, advocate):
    (us, _), (eu, _), _jp = stores
    outsider, _owner = plus_store("outside.myshopify.com", user_id="91009")
    _customer, link = advocate

    home = lookup(api, us, link.code)
    sister = lookup(api, eu, link.code.lower())
    stranger = lookup(api, outsider, link.code)

    assert home.status_code == sister.status_code == 200, sister.content
    assert sister.json()["referral"]["code"] == link.code
    assert sister.json()["shop"] == {"name": eu.name}  # the offer is the accepting store's
    assert stranger.status_code == 404
    assert "ana@example.com" not in sister.content.decode()


def test_codes_stay_in_their_store_when_referrals_are_not_shared(api, group, stores, advocate):
    (us, us_owner), (eu, _), _jp = stores
    group_sharing_update(merchant=us, actor=us_owner, referrals=False)

    assert lookup(api, us, advocate[1].code).status_code == 200
    assert lookup(api, eu, advocate[1].code).status_code == 404


def test_a_shared_customer_cannot_use_its_own_code_in_another_store(api, group, stores, advocate):
    _us, (eu, _), _jp = stores
    _customer, link = advocate
    CustomerFactory(
        merchant=eu, shopify_customer_id="7002", email="ana@example.com", first_name="Ana", last_name="Silva"
    )
    CustomerFactory(merchant=eu, shopify_customer_id="7003", email="bo@example.com")
    assert shared_customers_link(group=group).linked == 2

    assert lookup(api, eu, link.code, customer_id="7002").status_code == 422
    assert lookup(api, eu, link.code, customer_id="7003").status_code == 200
