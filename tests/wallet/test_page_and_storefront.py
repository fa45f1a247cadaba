"""The merchant's /app/wallet/ page (design preview, measured success rate), the storefront
buttons' data in the widgets' answer, and key rotation of the encrypted pass data."""

import base64
import os

import pytest
from django.core.management import call_command

from apps.core.crypto import key_id_of
from apps.wallet.models import ExportStatus, WalletExport
from tests.factories import CustomerFactory, StaffMemberFactory
from tests.shopify_helpers import proxy_signed_query, session_token

SHOP = "alpha-pets.myshopify.com"


def open_page(client, staff, **params):
    params["id_token"] = session_token(staff.merchant.shop_domain, user_id=staff.shopify_user_id)
    return client.get("/app/wallet/", params)


@pytest.mark.django_db
def test_page_shows_the_design_preview_and_the_measured_success_rate(client, owner, other_merchant, shopper):
    for status in [ExportStatus.EXPORTED] * 9 + [ExportStatus.FAILED]:
        WalletExport.objects.create(merchant=owner.merchant, customer=shopper, wallet_type="apple", status=status)
    # The other shop's failures must not count.
    for customer in other_merchant["customers"]:
        WalletExport.objects.create(merchant=other_merchant["merchant"], customer=customer, wallet_type="google",
                                    status=ExportStatus.FAILED)  # fmt: skip

    response = open_page(client, owner)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="pass-preview"' in html
    assert "Alpha Pets" in html and "1250" in html
    assert "90.0%" in html and "9 of 10" in html
    assert "Beta Gadgets" not in html
    assert "frame-ancestors https://alpha-pets.myshopify.com" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_page_preview_is_right_to_left_in_hebrew(client, owner, other_merchant):
    response = open_page(client, owner, locale="he")

    html = response.content.decode()
    assert 'dir="rtl"' in html and "נקודות" in html


@pytest.mark.django_db
def test_page_is_denied_without_the_frontend_scope(client, merchant, other_merchant):
    support = StaffMemberFactory(merchant=merchant, shopify_user_id="90002", role="support")

    response = open_page(client, support)

    assert response.status_code == 403


@pytest.mark.django_db
def test_widgets_answer_carries_the_wallet_buttons_with_the_seeds_aria_label(
    api, merchant, other_merchant, shopper, google_wallet_beta
):
    url = f"/proxy/v1/api/widgets?{proxy_signed_query(SHOP, '7001')}"
    response = api.get(url)

    assert response.status_code == 200, response.json()
    wallet = response.json()["contributions"]["wallet"]
    assert wallet["export_path"] == "/apps/loyalnest/v1/api/wallet/export"
    apple, google = wallet["buttons"]
    assert apple["aria_label"] == "Export loyalty balance to Apple Wallet"
    assert (apple["wallet_type"], google["wallet_type"]) == ("apple", "google")
    anonymous = api.get(f"/proxy/v1/api/widgets?{proxy_signed_query(SHOP)}").json()
    assert "wallet" not in (anonymous.get("contributions") or {})


@pytest.mark.django_db
def test_the_wallet_buttons_speak_each_requests_locale(api, merchant, other_merchant, shopper, google_wallet_beta):
    labels = {}
    for locale in ("fr", "en", "ar", "fr"):
        body = api.get(f"/proxy/v1/api/widgets?{proxy_signed_query(SHOP, '7001', locale=locale)}").json()
        labels.setdefault(locale, []).append(body["contributions"]["wallet"]["buttons"][0]["text"])

    assert labels["en"] == ["Add to Apple Wallet"]
    assert labels["fr"][0] == labels["fr"][1] != "Add to Apple Wallet"  # translated, and the same again
    assert labels["ar"][0] not in (labels["en"][0], labels["fr"][0])


@pytest.mark.django_db
def test_key_rotation_re_encrypts_pass_data_and_tokens(settings, merchant, other_merchant):
    old, new = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    existing = settings.ENCRYPTION_KEYS  # the fixtures' Shopify tokens are under it
    settings.ENCRYPTION_KEYS = f"old:{old},{existing}"
    customer = CustomerFactory(merchant=merchant)
    export = WalletExport.objects.create(merchant=merchant, customer=customer, wallet_type="apple",
                                         pass_data='{"points_balance": 500, "referral_code": "REF123"}')  # fmt: skip
    settings.ENCRYPTION_KEYS = f"new:{new},old:{old},{existing}"

    call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))  # noqa: SIM115

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pass_data FROM wallet_exports WHERE export_id = %s", [export.pk])
        (raw,) = cursor.fetchone()
    assert key_id_of(raw) == "new"
    settings.ENCRYPTION_KEYS = f"new:{new}"
    assert WalletExport.objects.get(pk=export.pk).pass_content == {"points_balance": 500, "referral_code": "REF123"}
