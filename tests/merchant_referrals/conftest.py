"""Fixtures of the merchant referral tests: an advocate with a link, referred shops, and the
fake Shopify's Partner API for app credits."""

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.merchant_referrals.services import merchant_referral_link_create
from tests.factories import MerchantFactory, StaffMemberFactory
from tests.fakes.shopify_ops_billing import PARTNERS

# The Partner API as the Celery worker process sees it (it reads its settings from the
# environment once, when the session's worker starts): the fake Shopify accepts this token.
WORKER_PARTNER_TOKEN = "partner-token-for-the-fake-shopify"
WORKER_PARTNER_ENV = {
    "SHOPIFY_PARTNER_API_URL": f"https://{PARTNERS}",
    "SHOPIFY_PARTNER_ORGANIZATION_ID": "1234",
    "SHOPIFY_PARTNER_APP_GID": "gid://partners/App/42",
    "SHOPIFY_PARTNER_API_TOKEN": WORKER_PARTNER_TOKEN,
    "MERCHANT_REFERRALS_TEST_CREDITS": "true",
}
for _name, _value in WORKER_PARTNER_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture
def advocate(merchant, owner):
    """The `merchant` fixture's shop, with its owner, as the advocate."""
    return merchant


@pytest.fixture
def link(advocate, owner):
    link, _created = merchant_referral_link_create(merchant=advocate, actor=owner, locale="en")
    return link


@pytest.fixture
def make_shop(db):
    """A freshly installed shop (optionally installed `installed_ago` before now)."""

    def make(domain: str, *, installed_ago=timedelta(minutes=1), owner_role=True):
        shop = MerchantFactory(shop_domain=domain, name=domain.split(".")[0].title())
        shop.installed_at = timezone.now() - installed_ago
        shop.save(update_fields=["installed_at"])
        if owner_role:
            StaffMemberFactory(merchant=shop, shopify_user_id=f"owner-{domain}", role="owner")
        return shop

    return make


@pytest.fixture
def referred(make_shop):
    return make_shop("gamma-goods.myshopify.com")


@pytest.fixture
def partner_billing(settings, fake_shopify):
    """The Partner API configured and reachable (through the fake Shopify)."""
    fake_shopify.shop(PARTNERS).access_tokens[WORKER_PARTNER_TOKEN] = time.time() + 3600
    settings.SHOPIFY_PARTNER_API_URL = f"https://{PARTNERS}"
    settings.SHOPIFY_PARTNER_ORGANIZATION_ID = "1234"
    settings.SHOPIFY_PARTNER_APP_GID = "gid://partners/App/42"
    settings.SHOPIFY_PARTNER_API_TOKEN = WORKER_PARTNER_TOKEN
    settings.MERCHANT_REFERRALS_TEST_CREDITS = True
    return fake_shopify
