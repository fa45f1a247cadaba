"""The merchant API of the core: envelope, auth (A6), locale, bad input, Idempotency-Key (C2)."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import translation
from rest_framework.test import APIClient

from apps.core.errors import InvalidLocale
from apps.core.models import AuditLog, Customer, IdempotencyRecord, Merchant, PointsTransaction
from apps.core.services import points_earn
from apps.core.tenancy import scopes_disabled
from tests.factories import CustomerFactory, MerchantFactory, RewardFactory, StaffMemberFactory
from tests.shopify_helpers import auth_header, session_token


def _bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# --- envelope and authentication -------------------------------------------------------------


def test_customer_list_is_enveloped_and_shows_only_the_callers_customers(api, owner, other_merchant):
    mine = CustomerFactory.create_batch(3, merchant=owner.merchant)

    response = api.get("/v1/api/customers", **auth_header(owner))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    assert sorted(c["id"] for c in body["customers"]) == sorted(c.pk for c in mine)
    foreign_ids = {c.pk for c in other_merchant["customers"]}
    assert not foreign_ids & {c["id"] for c in body["customers"]}


def test_customer_list_pages_by_cursor(api, owner, other_merchant):
    mine = sorted(c.pk for c in CustomerFactory.create_batch(5, merchant=owner.merchant))

    first = api.get("/v1/api/customers?limit=2", **auth_header(owner)).json()
    second = api.get(f"/v1/api/customers?limit=2&cursor={first['next_cursor']}", **auth_header(owner)).json()
    third = api.get(f"/v1/api/customers?limit=2&cursor={second['next_cursor']}", **auth_header(owner)).json()

    ids = [c["id"] for page in (first, second, third) for c in page["customers"]]
    assert ids == mine and third["next_cursor"] is None


def test_no_token_is_401_with_the_retry_header(api, owner):
    response = api.get("/v1/api/customers")

    assert response.status_code == 401
    assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize(
    "token_kwargs",
    [
        {"secret": "another-secret-of-some-other-app-0123456789"},
        {"audience": "another-client-id"},
        {"exp": 1_000_000_000},
        {"nbf": 4_000_000_000},
        {"dest": "https://beta-gadgets.myshopify.com"},  # dest and iss disagree
        {"iss": "https://evil.example.com/admin", "dest": "https://evil.example.com"},
    ],
    ids=["wrong-secret", "wrong-audience", "expired", "not-yet-valid", "dest-mismatch", "not-a-shop"],
)
def test_bad_session_tokens_are_refused(api, owner, other_merchant, token_kwargs):
    token = session_token(owner.merchant.shop_domain, user_id=owner.shopify_user_id, **token_kwargs)

    response = api.get("/v1/api/customers", **_bearer(token))

    assert response.status_code == 401
    assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_an_unsigned_token_is_refused(api, owner):
    import jwt

    unsigned = jwt.encode({"dest": f"https://{owner.merchant.shop_domain}"}, key=None, algorithm="none")

    assert api.get("/v1/api/customers", **_bearer(unsigned)).status_code == 401


def test_expiry_has_a_small_leeway(api, owner):
    import time

    token = session_token(owner.merchant.shop_domain, user_id=owner.shopify_user_id, exp=int(time.time()) - 5)

    assert api.get("/v1/api/customers", **_bearer(token)).status_code == 200


@override_settings(SHOPIFY_API_SECRET_PREVIOUS="the-old-secret-still-valid-during-rotation-00")
def test_the_previous_secret_is_accepted_during_rotation(api, owner):
    token = session_token(
        owner.merchant.shop_domain,
        user_id=owner.shopify_user_id,
        secret="the-old-secret-still-valid-during-rotation-00",
    )

    assert api.get("/v1/api/customers", **_bearer(token)).status_code == 200


def test_a_shop_shopify_refuses_to_exchange_for_is_refused(api, owner, fake_shopify):
    # A valid session token of a shop without a usable installation is exchanged first
    # (tests/shopify/test_install.py); when Shopify refuses, the request is 401.
    owner.merchant.is_installed = False
    owner.merchant.save()
    fake_shopify.not_installed.update({owner.merchant.shop_domain, "nobody.myshopify.com"})

    refused = api.get("/v1/api/customers", **auth_header(owner))
    unknown = api.get("/v1/api/customers", **_bearer(session_token("nobody.myshopify.com")))

    assert refused.status_code == unknown.status_code == 401
    assert refused["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert not Merchant.objects.filter(shop_domain="nobody.myshopify.com").exists()


def test_first_staff_member_becomes_owner_and_later_ones_support(api, merchant):
    first = api.get("/v1/api/me", **_bearer(session_token(merchant.shop_domain, user_id="111"))).json()
    second = api.get("/v1/api/me", **_bearer(session_token(merchant.shop_domain, user_id="222"))).json()

    assert first["staff"]["role"] == "owner" and second["staff"]["role"] == "support"
    assert "admin:points" in second["scopes"] and "admin:analytics" not in second["scopes"]


# --- locale -----------------------------------------------------------------------------------


def test_errors_speak_the_requested_locale(api, owner):
    response = api.get("/v1/api/customers/cus_missing?locale=de", **auth_header(owner))

    assert response.status_code == 404
    with translation.override("de"):
        expected = translation.gettext("Customer not found.")
    assert response.json()["error"]["message"] == expected == "Kunde nicht gefunden."


def test_locale_from_accept_language_when_not_explicit(api, owner):
    response = api.get("/v1/api/customers/cus_missing", HTTP_ACCEPT_LANGUAGE="ja-JP,ja;q=0.9", **auth_header(owner))

    with translation.override("ja"):
        expected = translation.gettext("Customer not found.")
    assert response.json()["error"]["message"] == expected != "Customer not found."


def test_unknown_locale_is_a_400(api, owner):
    response = api.get("/v1/api/customers?locale=xx-YY", **auth_header(owner))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == InvalidLocale.code


def test_zh_cn_is_understood(api, owner):
    response = api.get("/v1/api/me?locale=zh-CN", **auth_header(owner))

    assert response.json()["locale"] == "zh-CN"


# --- bad input --------------------------------------------------------------------------------


@pytest.fixture
def funded(owner):
    customer = CustomerFactory(merchant=owner.merchant)
    points_earn(merchant=owner.merchant, customer=customer, points=1000, idempotency_key="seed")
    return customer


def _post(api, staff, path, payload, **headers):
    return api.post(path, data=json.dumps(payload), content_type="application/json", **auth_header(staff), **headers)


def _ledger_unchanged(customer, balance=1000, entries=1):
    customer = Customer.objects.get(pk=customer.pk)
    return customer.points_balance == balance and PointsTransaction.objects.filter(customer=customer).count() == entries


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"points": 10, "reason": "x", "surprise": 1}, "surprise"),
        ({"points": "ten", "reason": "x"}, "points"),
        ({"points": 0, "reason": "x"}, "points"),
        ({"points": 10}, "reason"),
        ({"points": 10, "reason": "x" * 256}, "reason"),
    ],
    ids=["unknown-field", "wrong-type", "zero", "missing-reason", "too-long"],
)
def test_invalid_input_is_a_400_naming_the_field_and_changes_nothing(api, owner, funded, payload, field):
    response = _post(api, owner, "/v1/api/points/adjust", {"customer_id": funded.pk, **payload})

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == "validation_error"
    assert field in body["error"]["fields"]
    assert _ledger_unchanged(funded)


def test_malformed_json_is_a_400(api, owner, funded):
    response = api.post(
        "/v1/api/points/adjust", data="{not json", content_type="application/json", **auth_header(owner)
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_a_json_array_is_refused(api, owner, funded):
    response = _post(api, owner, "/v1/api/points/adjust", [1, 2, 3])

    assert response.status_code == 400
    assert _ledger_unchanged(funded)


def test_an_oversized_body_is_a_413(api, owner, funded, settings):
    payload = {"customer_id": funded.pk, "points": 1, "reason": "x" * (settings.API_MAX_BODY_BYTES + 10)}

    response = _post(api, owner, "/v1/api/points/adjust", payload)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert _ledger_unchanged(funded)


def test_non_json_content_type_is_a_415(api, owner, funded):
    response = api.post("/v1/api/points/adjust", data="points=1", content_type="text/plain", **auth_header(owner))

    assert response.status_code == 415
    assert _ledger_unchanged(funded)


def test_unknown_api_path_is_an_enveloped_404(api, owner):
    response = api.get("/v1/api/does-not-exist", **auth_header(owner))

    assert response.status_code == 404
    assert response.json() == {"status": "error", "error": {"code": "not_found", "message": "Not found."}}


def test_wrong_method_is_a_405_envelope(api, owner):
    response = api.delete("/v1/api/points/adjust", **auth_header(owner))

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_redeeming_too_much_is_a_422_and_writes_nothing(api, owner, funded):
    response = _post(api, owner, "/v1/api/points/redeem", {"customer_id": funded.pk, "points": 1001})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insufficient_points"
    assert _ledger_unchanged(funded)


# --- points endpoints --------------------------------------------------------------------------


def test_adjust_then_reverse_through_the_api(api, owner, funded, other_merchant):
    adjusted = _post(api, owner, "/v1/api/points/adjust", {"customer_id": funded.pk, "points": -200, "reason": "Fix"})
    assert adjusted.status_code == 201 and adjusted.json()["points_balance"] == 800

    reverse = _post(
        api,
        owner,
        "/v1/api/points/reverse",
        {"transaction_id": adjusted.json()["transaction"]["id"], "reason": "Oops"},
    )
    assert reverse.status_code == 201 and reverse.json()["points_balance"] == 1000

    history = api.get(f"/v1/api/customers/{funded.pk}/transactions", **auth_header(owner)).json()
    assert [t["kind"] for t in history["transactions"]] == ["reverse", "adjust", "earn"]
    assert AuditLog.objects.filter(merchant=owner.merchant, action="points_adjust", actor=owner).count() == 1


def test_redeem_a_reward_through_the_api(api, owner, funded, fake_shopify):
    from tests.shopify_helpers import shopify_connect

    shopify_connect(fake_shopify, owner.merchant)
    reward = RewardFactory(merchant=owner.merchant, points_cost=400)

    response = _post(api, owner, "/v1/api/points/redeem", {"customer_id": funded.pk, "reward_id": reward.pk})

    assert response.status_code == 201, response.content
    assert response.json()["points_balance"] == 600
    assert response.json()["redemption"]["code"].startswith("LOYAL-")


# --- Idempotency-Key (C2) ----------------------------------------------------------------------


def test_same_key_same_body_replays_the_stored_response(api, owner, funded):
    payload = {"customer_id": funded.pk, "points": 50, "reason": "Birthday"}

    first = _post(api, owner, "/v1/api/points/adjust", payload, HTTP_IDEMPOTENCY_KEY="abc-1")
    second = _post(api, owner, "/v1/api/points/adjust", payload, HTTP_IDEMPOTENCY_KEY="abc-1")

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert _ledger_unchanged(funded, balance=1050, entries=2)


def test_same_key_other_body_is_a_409_and_changes_nothing(api, owner, funded):
    _post(
        api,
        owner,
        "/v1/api/points/adjust",
        {"customer_id": funded.pk, "points": 50, "reason": "A"},
        HTTP_IDEMPOTENCY_KEY="k",
    )

    response = _post(
        api,
        owner,
        "/v1/api/points/adjust",
        {"customer_id": funded.pk, "points": 60, "reason": "A"},
        HTTP_IDEMPOTENCY_KEY="k",
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert _ledger_unchanged(funded, balance=1050, entries=2)


def test_a_failed_request_does_not_burn_the_key(api, owner, funded):
    too_much = {"customer_id": funded.pk, "points": 5000}
    assert _post(api, owner, "/v1/api/points/redeem", too_much, HTTP_IDEMPOTENCY_KEY="retry-me").status_code == 422
    points_earn(merchant=owner.merchant, customer=funded, points=4000, idempotency_key="top-up")

    response = _post(api, owner, "/v1/api/points/redeem", too_much, HTTP_IDEMPOTENCY_KEY="retry-me")

    assert response.status_code == 201
    assert IdempotencyRecord.objects.filter(key="retry-me").count() == 1


def test_keys_are_per_merchant(api, owner, funded, other_merchant):
    other_customer = other_merchant["customers"][0]
    points_earn(merchant=other_merchant["merchant"], customer=other_customer, points=100, idempotency_key="seed")
    _post(
        api,
        owner,
        "/v1/api/points/adjust",
        {"customer_id": funded.pk, "points": 5, "reason": "A"},
        HTTP_IDEMPOTENCY_KEY="shared",
    )

    response = _post(
        api,
        other_merchant["owner"],
        "/v1/api/points/adjust",
        {"customer_id": other_customer.pk, "points": 5, "reason": "A"},
        HTTP_IDEMPOTENCY_KEY="shared",
    )

    assert response.status_code == 201
    assert response.json()["points_balance"] == 105


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_apply_once():
    with scopes_disabled():
        merchant = MerchantFactory()
        owner = StaffMemberFactory(merchant=merchant, role="owner")
        customer = CustomerFactory(merchant=merchant)
    payload = json.dumps({"customer_id": customer.pk, "points": 25, "reason": "Concurrent"})

    def send(_):
        try:
            client = APIClient()
            response = client.post(
                "/v1/api/points/adjust",
                data=payload,
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY="same-key",
                **auth_header(owner),
            )
            return response.status_code, response.json()["transaction"]["id"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(send, range(6)))

    assert {status for status, _ in results} == {201}
    assert len({tx for _, tx in results}) == 1
    with scopes_disabled():
        assert Customer.objects.get(pk=customer.pk).points_balance == 25
        assert PointsTransaction.objects.filter(customer=customer).count() == 1
