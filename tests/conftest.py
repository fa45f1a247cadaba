import contextlib

import pytest
import redis
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from apps.core.redis import get_redis
from tests.factories import CustomerFactory, MerchantFactory, StaffMemberFactory


@pytest.fixture(autouse=True)
def _unscoped_setup():
    """Test bodies arrange data across merchants; code under test enters scopes itself."""
    with scopes_disabled():
        yield


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty test Redis database (db 9 by default)."""
    # Tests that stop Redis on purpose restart it themselves.
    with contextlib.suppress(redis.RedisError):
        get_redis().flushdb()
    yield


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def merchant(db):
    return MerchantFactory(shop_domain="alpha-pets.myshopify.com", name="Alpha Pets")


@pytest.fixture
def other_merchant(db):
    """The second merchant every API test seeds, to prove none of its data leaks."""
    merchant = MerchantFactory(shop_domain="beta-gadgets.myshopify.com", name="Beta Gadgets")
    owner = StaffMemberFactory(merchant=merchant, shopify_user_id="80001", role="owner")
    customers = CustomerFactory.create_batch(3, merchant=merchant, points_balance=0)
    return {"merchant": merchant, "owner": owner, "customers": customers}


@pytest.fixture
def owner(merchant):
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90001", role="owner")


@pytest.fixture
def customer(merchant):
    return CustomerFactory(merchant=merchant)
