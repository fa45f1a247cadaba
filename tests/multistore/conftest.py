"""Fixtures of the multi-store tests: Plus stores of one owner, joined into a group through the
real invite flow."""

import pytest

from apps.multistore.services import group_invite_accept, group_invite_create
from tests.factories import MerchantFactory, StaffMemberFactory

OWNER_EMAIL = "founder@brand.example"


@pytest.fixture(autouse=True)
def _no_background_tasks(settings):
    """Linking and copy syncs run inline in these tests unless a test turns the queue on."""
    settings.MULTISTORE_LINK_ON_JOIN = False
    settings.MULTISTORE_SYNC_ON_CHANGE = False


def plus_store(domain: str, *, owner_email: str = OWNER_EMAIL, user_id: str = "91001"):
    store = MerchantFactory(shop_domain=domain, name=domain.split(".")[0], shopify_plan="shopify_plus")
    owner = StaffMemberFactory(merchant=store, shopify_user_id=user_id, role="owner", email=owner_email)
    return store, owner


def join(primary, primary_owner, store, store_owner):
    result = group_invite_create(merchant=primary, actor=primary_owner, shop_domain=store.shop_domain)
    return group_invite_accept(merchant=store, actor=store_owner, token=result.token)


@pytest.fixture
def stores(db):
    """Three Plus stores of the same owner: (store, owner) pairs, not yet grouped."""
    return [
        plus_store("brand-us.myshopify.com", user_id="91001"),
        plus_store("brand-eu.myshopify.com", user_id="91002"),
        plus_store("brand-jp.myshopify.com", user_id="91003"),
    ]


@pytest.fixture
def group(stores):
    (us, us_owner), (eu, eu_owner), (jp, jp_owner) = stores
    join(us, us_owner, eu, eu_owner)
    return join(us, us_owner, jp, jp_owner)
