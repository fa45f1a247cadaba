"""POST /v1/api/wallet/export: the shopper through the app proxy, staff through a session token."""

import io
import json
import zipfile
from urllib.parse import urlparse

import pytest
from django.core import signing

from apps.core.crypto import decrypt
from apps.core.models import AuditLog, ReferralLink
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from apps.notifications.models import Notification
from apps.wallet.links import SALT
from apps.wallet.models import ExportStatus, WalletExport, WalletPass
from tests.factories import StaffMemberFactory
from tests.shopify_helpers import auth_header, proxy_signed_query

SHOP = "alpha-pets.myshopify.com"
OTHER_SHOP = "beta-gadgets.myshopify.com"


def shopper_export(api, body, *, customer_id="7001", shop=SHOP):
    return api.post(f"/proxy/v1/api/wallet/export?{proxy_signed_query(shop, customer_id)}", body, format="json")


def fetch(api, pass_url):
    return api.get(urlparse(pass_url).path)


@pytest.mark.django_db
def test_shopper_exports_an_apple_pass_and_everything_is_recorded(
    api, merchant, other_merchant, shopper, apple_wallet, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = shopper_export(api, {"wallet_type": "apple", "locale": "ar"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    assert body["pass_url"].startswith("https://wallet.loyalnest.test/wallet/passes/")
    [export] = WalletExport.objects.all()
    assert (export.merchant_id, export.customer_id, export.wallet_type) == (merchant.pk, shopper.pk, "apple")
    assert export.status == ExportStatus.EXPORTED and export.locale == "ar"
    link = ReferralLink.objects.get(customer=shopper)
    assert export.pass_content["points_balance"] == 500
    assert export.pass_content["referral_code"] == link.code
    # pass_data is encrypted at rest: the column holds a key-id-tagged AES-GCM ciphertext.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pass_data FROM wallet_exports WHERE export_id = %s", [export.pk])
        (raw,) = cursor.fetchone()
    assert raw.startswith("enc1:") and link.code not in raw
    assert json.loads(decrypt(raw))["points_balance"] == 500
    audit = AuditLog.objects.get(action="wallet_exported")
    assert audit.merchant_id == merchant.pk and audit.target_id == export.pk
    assert audit.metadata["wallet_type"] == "apple" and audit.metadata["points_balance"] == 500
    entries = get_redis().xrange(stream_name(merchant.pk, f"wallet:{shopper.pk}"))
    assert json.loads(entries[-1][1]["data"])["export_id"] == export.pk
    notifications = Notification.objects.filter(customer=shopper, type="wallet_exported")
    assert notifications.exists() and {n.locale for n in notifications} == {"ar"}
    # Nothing of the other shop was touched.
    assert not WalletExport.objects.filter(merchant=other_merchant["merchant"]).exists()

    pkpass = fetch(api, body["pass_url"])
    assert pkpass.status_code == 200
    assert pkpass["Content-Type"] == "application/vnd.apple.pkpass"
    pass_json = json.loads(zipfile.ZipFile(io.BytesIO(pkpass.content)).read("pass.json"))
    assert pass_json["serialNumber"] == export.serial_number
    assert pass_json["storeCard"]["primaryFields"][0]["value"] == 500
    assert pass_json["barcodes"][0]["message"] == f"https://{SHOP}/?ref={link.code}"


@pytest.mark.django_db
def test_google_export_redirects_to_a_signed_save_link(
    api, merchant, other_merchant, shopper, google_wallet, google_wallet_beta
):
    import jwt

    response = shopper_export(api, {"wallet_type": "google"})

    assert response.status_code == 200, response.json()
    saved = fetch(api, response.json()["pass_url"])
    assert saved.status_code == 302
    assert saved["Location"].startswith("https://pay.google.com/gp/v/save/")
    token = saved["Location"].rsplit("/", 1)[1]
    claims = jwt.decode(token, google_wallet.public_key(), algorithms=["RS256"], audience="google")
    assert claims["payload"]["loyaltyObjects"][0]["loyaltyPoints"]["balance"] == {"int": 500}
    assert claims["payload"]["loyaltyObjects"][0]["accountName"] == "Noor Haddad"


@pytest.mark.django_db
def test_a_shopper_cannot_export_another_customers_pass(api, merchant, other_merchant, shopper, apple_wallet):
    other_customer = other_merchant["customers"][0]

    response = shopper_export(api, {"wallet_type": "apple", "customer_id": other_customer.pk})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not WalletExport.objects.exists() and not AuditLog.objects.filter(action__startswith="wallet").exists()


@pytest.mark.django_db
def test_the_shopper_is_only_the_signed_logged_in_customer(api, merchant, other_merchant, shopper, apple_wallet):
    # The other shop's customer id in the signed query, but signed for shop A: a new bare shopper
    # of shop A, never the other shop's customer.
    other_customer = other_merchant["customers"][0]
    response = shopper_export(api, {"wallet_type": "apple"}, customer_id=other_customer.shopify_customer_id)

    assert response.status_code == 200
    [export] = WalletExport.objects.all()
    assert export.merchant_id == merchant.pk and export.customer_id != other_customer.pk


@pytest.mark.django_db
def test_anonymous_visitors_and_forged_signatures_export_nothing(api, merchant, other_merchant, shopper, apple_wallet):
    anonymous = api.post(f"/proxy/v1/api/wallet/export?{proxy_signed_query(SHOP)}", {"wallet_type": "apple"},
                         format="json")  # fmt: skip
    forged = api.post(
        f"/proxy/v1/api/wallet/export?{proxy_signed_query(SHOP, '7001', secret='not-the-secret')}",
        {"wallet_type": "apple"},
        format="json",
    )

    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "login_required"
    assert forged.status_code == 401
    assert not WalletExport.objects.exists()


@pytest.mark.django_db
def test_bad_input_is_a_localized_400(api, merchant, other_merchant, shopper, apple_wallet):
    response = shopper_export(api, {"wallet_type": "samsung", "locale": "de"})
    unknown = shopper_export(api, {"wallet_type": "apple", "color": "red"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"wallet_type"}
    assert error["message"] != "Some fields are missing or invalid."  # German, not English
    assert unknown.status_code == 400 and set(unknown.json()["error"]["fields"]) == {"color"}
    assert not WalletExport.objects.exists()


@pytest.mark.django_db
def test_unconfigured_wallet_is_a_recorded_failure(api, merchant, other_merchant, shopper, settings):
    settings.WALLET_APPLE_PASS_TYPE_ID = ""

    response = shopper_export(api, {"wallet_type": "apple"})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "wallet_not_configured"
    [export] = WalletExport.objects.all()
    assert export.status == ExportStatus.FAILED and export.pass_data == ""
    assert AuditLog.objects.filter(action="wallet_export_failed", target_id=export.pk).exists()
    assert not AuditLog.objects.filter(action="wallet_exported").exists()
    assert not Notification.objects.filter(type="wallet_exported").exists()


@pytest.mark.django_db
def test_expired_or_tampered_pass_urls_are_refused(api, merchant, other_merchant, shopper, apple_wallet, settings):
    pass_url = shopper_export(api, {"wallet_type": "apple"}).json()["pass_url"]
    path = urlparse(pass_url).path
    token = path.rsplit("/", 1)[1]
    export = WalletExport.objects.get()

    tampered = api.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB"))
    other_export = signing.dumps({"m": other_merchant["merchant"].pk, "e": export.pk}, salt=SALT)
    forged = api.get(f"/wallet/passes/{signing.dumps({'m': merchant.pk, 'e': export.pk}, salt='other')}")
    settings.WALLET_PASS_URL_TTL_SECONDS = -1
    expired = api.get(path)

    assert tampered.status_code == 403
    assert forged.status_code == 403
    assert expired.status_code == 403
    settings.WALLET_PASS_URL_TTL_SECONDS = 900
    assert api.get(f"/wallet/passes/{other_export}").status_code == 403  # export of another shop: not found
    assert api.get(f"/wallet/passes/{token}").status_code == 200


@pytest.mark.django_db
def test_staff_support_exports_for_a_customer_of_their_shop(api, merchant, other_merchant, shopper, apple_wallet):
    support = StaffMemberFactory(merchant=merchant, shopify_user_id="90002", role="support")

    response = api.post("/v1/api/wallet/export", {"customer_id": shopper.pk, "wallet_type": "apple", "locale": "es"},
                        format="json", **auth_header(support))  # fmt: skip

    assert response.status_code == 200, response.json()
    assert response.json()["pass_url"].startswith("https://wallet.loyalnest.test/wallet/passes/")
    audit = AuditLog.objects.get(action="wallet_exported")
    assert audit.actor_id == support.pk


@pytest.mark.django_db
def test_staff_cannot_export_another_shops_customer(api, merchant, other_merchant, shopper, owner, apple_wallet):
    other_customer = other_merchant["customers"][0]

    response = api.post("/v1/api/wallet/export", {"customer_id": other_customer.pk, "wallet_type": "apple"},
                        format="json", **auth_header(owner))  # fmt: skip

    assert response.status_code == 404
    assert not WalletExport.objects.exists()


@pytest.mark.django_db
def test_staff_without_the_points_scope_is_denied_and_nothing_changes(api, merchant, other_merchant, shopper,
                                                                       apple_wallet):  # fmt: skip
    marketer = StaffMemberFactory(merchant=merchant, shopify_user_id="90003", role="marketer")

    response = api.post("/v1/api/wallet/export", {"customer_id": shopper.pk, "wallet_type": "apple"}, format="json",
                        **auth_header(marketer))  # fmt: skip

    assert response.status_code == 403
    assert not WalletExport.objects.exists() and not WalletPass.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="wallet").exists()


@pytest.mark.django_db
def test_wallet_exports_is_hash_partitioned_by_merchant_on_postgresql(merchant, other_merchant):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_partkeydef('wallet_exports'::regclass), "
            "(SELECT count(*) FROM pg_inherits WHERE inhparent = 'wallet_exports'::regclass)"
        )
        key, partitions = cursor.fetchone()
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'wallet_exports'")
        indexes = {row[0] for row in cursor.fetchall()}

    assert key == "HASH (merchant_id)" and partitions == 16
    assert "idx_wallet_exports_customer_id" in indexes


@pytest.mark.django_db
def test_shopper_exports_are_rate_limited_per_shopper(api, merchant, other_merchant, shopper, apple_wallet, settings):
    settings.PROXY_RATE_LIMITS = {**settings.PROXY_RATE_LIMITS, "wallet": "2/60"}

    statuses = [shopper_export(api, {"wallet_type": "apple"}).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert WalletExport.objects.count() == 2
