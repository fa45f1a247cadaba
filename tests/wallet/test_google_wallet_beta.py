"""`google_wallet` beta flag (LoyalNest Collective): Google Wallet exports are refused with the
wallet's "not available for this shop" message until the merchant switches the flag on; Apple
Wallet stays available to everyone, and one store's flag changes nothing for another."""

import pytest

from apps.wallet.models import WalletExport
from tests.factories import CustomerFactory
from tests.shopify_helpers import proxy_signed_query
from tests.slack_community.beta import beta_on

from .test_export_api import OTHER_SHOP, SHOP, shopper_export


@pytest.mark.django_db
def test_google_exports_follow_the_merchants_flag_only(api, merchant, other_merchant, shopper, apple_wallet,
                                                        google_wallet):  # fmt: skip
    CustomerFactory(merchant=other_merchant["merchant"], shopify_customer_id="7001")

    before = shopper_export(api, {"wallet_type": "google", "locale": "es"})
    apple = shopper_export(api, {"wallet_type": "apple"})

    assert before.status_code == 403
    assert before.json()["error"]["code"] == "wallet_not_enabled"
    assert before.json()["error"]["message"] == "Esta billetera aún no está disponible para esta tienda."
    assert apple.status_code == 200  # Apple Wallet is not a beta feature
    assert set(WalletExport.objects.values_list("wallet_type", flat=True)) == {"apple"}  # refusal not recorded

    beta_on(merchant, "google_wallet")
    ours = shopper_export(api, {"wallet_type": "google"})
    theirs = shopper_export(api, {"wallet_type": "google"}, shop=OTHER_SHOP)

    assert ours.status_code == 200 and ours.json()["pass_url"]
    assert theirs.status_code == 403 and theirs.json()["error"]["code"] == "wallet_not_enabled"
    assert WalletExport.objects.filter(merchant=merchant, wallet_type="google").count() == 1
    assert not WalletExport.objects.filter(merchant=other_merchant["merchant"]).exists()


def _buttons(api, shop):
    wallet = api.get(f"/proxy/v1/api/widgets?{proxy_signed_query(shop, '7001')}").json()["contributions"]["wallet"]
    return [button["wallet_type"] for button in wallet["buttons"]]


@pytest.mark.django_db
def test_the_storefront_lists_the_google_button_only_with_the_flag(api, merchant, other_merchant, shopper):
    CustomerFactory(merchant=other_merchant["merchant"], shopify_customer_id="7001")
    assert _buttons(api, SHOP) == ["apple"]

    beta_on(merchant, "google_wallet")

    assert _buttons(api, SHOP) == ["apple", "google"]
    assert _buttons(api, OTHER_SHOP) == ["apple"]
