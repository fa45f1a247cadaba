"""Passes that stay current: the PassKit web service, and pushes (APNs over HTTP/2 to a local
fake, Google objects patched on a local fake REST API) after ledger changes."""

import io
import json
import zipfile
from urllib.parse import urlparse

import jwt
import pytest

from apps.core.models import ReferralLink
from apps.core.services import referral_link_get_or_create
from apps.core.services.ledger import points_adjust
from apps.core.tenancy import merchant_scope
from apps.wallet.models import PushStatus, WalletDevice, WalletPass, WalletPassLog
from apps.wallet.tasks import wallet_passes_push_task
from tests.fakes.http import FakeServer
from tests.shopify_helpers import proxy_signed_query

from .conftest import PASS_TYPE_ID

SHOP = "alpha-pets.myshopify.com"
DEVICE = "device-library-1"


def export_pass(api, wallet_type="apple", customer_id="7001") -> WalletPass:
    response = api.post(
        f"/proxy/v1/api/wallet/export?{proxy_signed_query(SHOP, customer_id)}",
        {"wallet_type": wallet_type},
        format="json",
    )
    assert response.status_code == 200, response.json()
    return WalletPass.objects.get(customer__shopify_customer_id=customer_id, wallet_type=wallet_type)


def passkit(path: str) -> str:
    return f"/wallet/passkit/v1/{path}"


def apple_auth(wallet_pass) -> dict:
    return {"HTTP_AUTHORIZATION": f"ApplePass {wallet_pass.authentication_token}"}


def register(api, wallet_pass, *, device=DEVICE, token="push-token-1", auth=None):  # noqa: S107
    return api.post(
        passkit(f"devices/{device}/registrations/{PASS_TYPE_ID}/{wallet_pass.pk}"),
        {"pushToken": token},
        format="json",
        **(auth if auth is not None else apple_auth(wallet_pass)),
    )


@pytest.mark.django_db
def test_passkit_registration_needs_the_pass_token(api, merchant, other_merchant, shopper, apple_wallet):
    wallet_pass = export_pass(api)

    wrong = register(api, wallet_pass, auth={"HTTP_AUTHORIZATION": "ApplePass not-the-token"})
    missing = register(api, wallet_pass, auth={})
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert not WalletDevice.objects.exists()

    assert register(api, wallet_pass).status_code == 201
    assert register(api, wallet_pass).status_code == 200  # already registered
    [device] = WalletDevice.objects.all()
    assert device.merchant_id == merchant.pk and device.push_token == "push-token-1"

    assert api.delete(passkit(f"devices/{DEVICE}/registrations/{PASS_TYPE_ID}/{wallet_pass.pk}")).status_code == 401
    deleted = api.delete(
        passkit(f"devices/{DEVICE}/registrations/{PASS_TYPE_ID}/{wallet_pass.pk}"), **apple_auth(wallet_pass)
    )
    assert deleted.status_code == 200 and not WalletDevice.objects.exists()


@pytest.mark.django_db
def test_serials_updated_since_and_latest_pass(api, merchant, other_merchant, shopper, apple_wallet):
    wallet_pass = export_pass(api)
    register(api, wallet_pass)

    listed = api.get(passkit(f"devices/{DEVICE}/registrations/{PASS_TYPE_ID}"))
    assert listed.status_code == 200
    tag = listed.json()["lastUpdated"]
    assert listed.json()["serialNumbers"] == [wallet_pass.pk]
    assert (
        api.get(passkit(f"devices/{DEVICE}/registrations/{PASS_TYPE_ID}?passesUpdatedSince={tag}")).status_code == 204
    )
    assert api.get(passkit(f"devices/unknown-device/registrations/{PASS_TYPE_ID}")).status_code == 204

    with merchant_scope(merchant):
        points_adjust(merchant=merchant, customer=shopper, points=250, idempotency_key="t-1", reason="test")
    changed = api.get(passkit(f"devices/{DEVICE}/registrations/{PASS_TYPE_ID}?passesUpdatedSince={tag}"))
    assert changed.status_code == 200 and changed.json()["serialNumbers"] == [wallet_pass.pk]

    assert api.get(passkit(f"passes/{PASS_TYPE_ID}/{wallet_pass.pk}")).status_code == 401
    latest = api.get(passkit(f"passes/{PASS_TYPE_ID}/{wallet_pass.pk}"), **apple_auth(wallet_pass))
    assert latest.status_code == 200 and latest["Last-Modified"]
    pass_json = json.loads(zipfile.ZipFile(io.BytesIO(latest.content)).read("pass.json"))
    assert pass_json["storeCard"]["primaryFields"][0]["value"] == 750
    assert pass_json["authenticationToken"] == wallet_pass.authentication_token
    not_modified = api.get(
        passkit(f"passes/{PASS_TYPE_ID}/{wallet_pass.pk}"),
        HTTP_IF_MODIFIED_SINCE=latest["Last-Modified"],
        **apple_auth(wallet_pass),
    )
    assert not_modified.status_code == 304


@pytest.mark.django_db
def test_log_endpoint_stores_device_messages(api, db):
    response = api.post(passkit("log"), {"logs": ["Web service error for pass.x: 401"]}, format="json")

    assert response.status_code == 200
    assert WalletPassLog.objects.get().message == "Web service error for pass.x: 401"


@pytest.mark.django_db
def test_ledger_change_marks_passes_and_pushes_over_http2(
    api, merchant, other_merchant, shopper, fake_apns, django_capture_on_commit_callbacks, caplog
):
    wallet_pass = export_pass(api)
    register(api, wallet_pass, token="aa11")
    register(api, wallet_pass, device="device-2", token="bb22")
    other_customer = other_merchant["customers"][0]

    with django_capture_on_commit_callbacks(execute=False) as callbacks, merchant_scope(merchant):
        points_adjust(merchant=merchant, customer=shopper, points=100, idempotency_key="t-2", reason="test")
    with merchant_scope(other_merchant["merchant"]):
        points_adjust(merchant=other_merchant["merchant"], customer=other_customer, points=5, idempotency_key="t-3",
                      reason="test")  # fmt: skip

    wallet_pass.refresh_from_db()
    assert wallet_pass.push_status == PushStatus.PENDING
    assert callbacks  # the push is queued after commit, never inside the transaction
    assert fake_apns.pushes == []

    result = wallet_passes_push_task.apply(kwargs={"merchant_id": merchant.pk, "pass_ids": [wallet_pass.pk]}).get()

    assert result == {"pushed": 1, "retry": 0}
    assert sorted(push.device_token for push in fake_apns.pushes) == ["aa11", "bb22"]
    assert "/3/device/[redacted]" in caplog.text and "aa11" not in caplog.text  # no tokens in logs
    push = fake_apns.pushes[0]
    assert push.headers["apns-topic"] == PASS_TYPE_ID
    assert push.body == b"{}"
    token = push.headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token)["kid"] == "KEYID12345"
    assert jwt.decode(token, fake_apns.public_key, algorithms=["ES256"])["iss"] == "TEAMID1234"
    wallet_pass.refresh_from_db()
    assert wallet_pass.push_status == PushStatus.CURRENT and wallet_pass.last_pushed_at is not None


@pytest.mark.django_db
def test_unregistered_devices_are_dropped_and_server_errors_retried_then_failed(
    api, merchant, other_merchant, shopper, fake_apns, settings
):
    settings.WALLET_PUSH_MAX_RETRIES = 1
    wallet_pass = export_pass(api)
    register(api, wallet_pass, token="gone")
    register(api, wallet_pass, device="device-2", token="flaky")

    def respond(push):
        if push.device_token == "gone":
            return 410, {"reason": "Unregistered"}
        return 503, {"reason": "ServiceUnavailable"}

    fake_apns.respond = respond
    WalletPass.objects.filter(pk=wallet_pass.pk).update(push_status=PushStatus.PENDING)

    first = wallet_passes_push_task.apply(kwargs={"merchant_id": merchant.pk, "pass_ids": [wallet_pass.pk]}).get()
    assert first["retry"] == 1
    assert list(WalletDevice.objects.values_list("device_library_identifier", flat=True)) == ["device-2"]
    wallet_pass.refresh_from_db()
    assert wallet_pass.push_status == PushStatus.PENDING and wallet_pass.push_attempts == 1

    last = wallet_passes_push_task.apply(
        kwargs={"merchant_id": merchant.pk, "pass_ids": [wallet_pass.pk], "attempt": 1}
    ).get()
    assert last == {"pushed": 0, "failed": 1}
    wallet_pass.refresh_from_db()
    assert wallet_pass.push_status == PushStatus.FAILED
    assert "503" in wallet_pass.last_push_error


@pytest.mark.django_db
def test_google_objects_are_patched_through_the_rest_api(
    api, merchant, other_merchant, shopper, google_wallet, google_wallet_beta, settings
):
    def respond(request):
        if request.path == "/token":
            return 200, {"access_token": "ya29.fake", "expires_in": 3600}, {}
        return 200, {"id": "patched"}, {}

    with FakeServer(respond=respond) as google:
        handler = google._server.RequestHandlerClass
        handler.do_PATCH = handler._handle  # the shared fake answers GET/POST/PUT/DELETE; Google patches
        settings.WALLET_GOOGLE_TOKEN_URL = f"{google.url}/token"
        settings.WALLET_GOOGLE_API_BASE_URL = f"{google.url}/walletobjects/v1"
        wallet_pass = export_pass(api, wallet_type="google")
        with merchant_scope(merchant):
            points_adjust(merchant=merchant, customer=shopper, points=40, idempotency_key="t-4", reason="test")

        result = wallet_passes_push_task.apply(kwargs={"merchant_id": merchant.pk, "pass_ids": [wallet_pass.pk]}).get()

    assert result == {"pushed": 1, "retry": 0}
    token_request, patch = google.requests
    assert "grant_type=urn" in token_request.body.decode()
    assert patch.method == "PATCH"
    assert urlparse(patch.path).path == f"/walletobjects/v1/loyaltyObject/3388000000012345678.{wallet_pass.pk}"
    assert patch.headers["Authorization"] == "Bearer ya29.fake"
    assert patch.json()["loyaltyPoints"]["balance"] == {"int": 540}
    wallet_pass.refresh_from_db()
    assert wallet_pass.push_status == PushStatus.CURRENT


@pytest.mark.django_db
def test_a_new_referral_code_updates_the_pass(
    api, merchant, other_merchant, shopper, fake_apns, django_capture_on_commit_callbacks
):
    wallet_pass = export_pass(api)
    register(api, wallet_pass, token="cc33")
    WalletPass.objects.filter(pk=wallet_pass.pk).update(push_status=PushStatus.CURRENT)
    old = ReferralLink.objects.get(customer=shopper, is_active=True)

    with django_capture_on_commit_callbacks(execute=False) as callbacks, merchant_scope(merchant):
        ReferralLink.objects.filter(pk=old.pk).update(is_active=False)  # e.g. a support agent retires it
        new = referral_link_get_or_create(merchant=merchant, customer=shopper)
        wallet_pass.refresh_from_db()
        assert wallet_pass.push_status == PushStatus.PENDING  # marked inside the same transaction
    assert callbacks and fake_apns.pushes == []  # the push is queued after commit

    result = wallet_passes_push_task.apply(kwargs={"merchant_id": merchant.pk, "pass_ids": [wallet_pass.pk]}).get()
    assert result == {"pushed": 1, "retry": 0} and new.code != old.code
    assert [push.device_token for push in fake_apns.pushes] == ["cc33"]
    wallet_pass.refresh_from_db()
    assert wallet_pass.push_status == PushStatus.CURRENT
    latest = api.get(passkit(f"passes/{PASS_TYPE_ID}/{wallet_pass.pk}"), **apple_auth(wallet_pass))
    pass_json = json.loads(zipfile.ZipFile(io.BytesIO(latest.content)).read("pass.json"))
    assert new.code in pass_json["barcodes"][0]["message"] and old.code not in pass_json["barcodes"][0]["message"]
