"""Shopify Flow: triggers sent with flowTriggerReceive, actions verified and dispatched."""

import base64
import hashlib
import hmac
import json

import pytest

from apps.core.models import PointsTransaction
from apps.shopify.flow import (
    ACTION_AWARD_POINTS,
    TRIGGER_TIER_CHANGED,
    flow_action_handles,
    flow_trigger_fire,
    flow_trigger_send,
    register_flow_action,
)
from apps.shopify.graphql import ShopifyUserError
from tests.factories import CustomerFactory
from tests.shopify_helpers import shopify_connect

URL = "/shopify/flow/actions/"


def _signed(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _post(client, handle, payload, *, secret=None, signature=None, shop_header=None, raw=None):
    from django.conf import settings

    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"HTTP_X_SHOPIFY_HMAC_SHA256": signature or _signed(body, secret or settings.SHOPIFY_API_SECRET)}
    if shop_header:
        headers["HTTP_X_SHOPIFY_SHOP_DOMAIN"] = shop_header
    return client.post(f"{URL}{handle}", data=body, content_type="application/json", **headers)


def _award(merchant, customer, *, run_id="run-1", points=25, **extra):
    return {
        "shop_id": "1",
        "shopify_domain": merchant.shop_domain,
        "action_run_id": run_id,
        "action_definition_id": "Award loyalty points",
        "handle": ACTION_AWARD_POINTS,
        "properties": {"customer_id": customer.shopify_customer_id, "points": points, **extra},
    }


def test_a_trigger_is_sent_with_its_handle_and_payload(merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    payload = {"customer_id": 7000001, "Previous tier": "Silver", "New tier": "Gold", "Points balance": 900}

    flow_trigger_send(merchant=merchant, handle=TRIGGER_TIER_CHANGED, payload=payload)

    assert fake_shopify.shop(merchant.shop_domain).data["flow_triggers"] == [(TRIGGER_TIER_CHANGED, payload)]


def test_a_trigger_flow_refuses_raises_a_typed_error(merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    fake_shopify.flow_trigger_handles = {TRIGGER_TIER_CHANGED}

    with pytest.raises(ShopifyUserError) as refused:
        flow_trigger_send(merchant=merchant, handle="loyalnest-not-deployed", payload={})

    assert "not found" in refused.value.detail


def test_a_trigger_waits_for_the_commit_and_refuses_bad_input(merchant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        flow_trigger_fire(merchant=merchant, handle=TRIGGER_TIER_CHANGED, payload={"customer_id": 1})
        with pytest.raises(ValueError):
            flow_trigger_fire(merchant=merchant, handle="Not A Handle!", payload={})
        with pytest.raises(ValueError):
            flow_trigger_fire(merchant=merchant, handle=TRIGGER_TIER_CHANGED, payload={"x": "y" * 60_000})

    assert len(callbacks) == 1


def test_award_points_credits_once_however_often_flow_resends(client, merchant, other_merchant):
    customer = CustomerFactory(merchant=merchant, points_balance=0)

    answers = [_post(client, ACTION_AWARD_POINTS, _award(merchant, customer)) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["points_balance"] == 25 and answers[0].json()["error"] is None
    assert [a.json()["created"] for a in answers] == [True, False, False]
    customer.refresh_from_db()
    assert customer.points_balance == 25
    entry = PointsTransaction.objects.get(customer=customer)
    assert entry.idempotency_key == "flow:run-1" and entry.metadata["source"] == "shopify_flow"
    assert not PointsTransaction.objects.filter(merchant=other_merchant["merchant"]).exists()


def test_a_bad_or_missing_signature_is_401_and_changes_nothing(client, merchant):
    customer = CustomerFactory(merchant=merchant, points_balance=0)
    payload = _award(merchant, customer)

    forged = _post(client, ACTION_AWARD_POINTS, payload, secret="not-the-app-secret")
    tampered = _post(
        client,
        ACTION_AWARD_POINTS,
        {**payload, "properties": {**payload["properties"], "points": 5000}},
        signature=_signed(json.dumps(payload).encode(), "test-client-secret-for-the-fake-shopify-0123456789"),
    )
    missing = client.post(f"{URL}{ACTION_AWARD_POINTS}", data=json.dumps(payload), content_type="application/json")

    assert [r.status_code for r in (forged, tampered, missing)] == [401, 401, 401]
    assert forged.json()["error"]["code"] == "authentication_failed"
    assert not PointsTransaction.objects.exists()


def test_the_previous_secret_is_accepted_during_a_rotation(client, merchant, settings):
    settings.SHOPIFY_API_SECRET_PREVIOUS = "the-previous-client-secret"
    customer = CustomerFactory(merchant=merchant)

    answer = _post(client, ACTION_AWARD_POINTS, _award(merchant, customer), secret="the-previous-client-secret")

    assert answer.status_code == 200


def test_an_unknown_handle_is_404(client, merchant):
    customer = CustomerFactory(merchant=merchant)
    payload = {**_award(merchant, customer), "handle": "loyalnest-award-nothing"}

    answer = _post(client, "loyalnest-award-nothing", payload)

    assert answer.status_code == 404 and not PointsTransaction.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"properties": {"points": 10}},
        {"properties": {"customer_id": "not-an-id", "points": 10}},
        {"properties": {"customer_id": "7000001", "points": -3}},
        {"action_run_id": ""},
        {"handle": "loyalnest-something-else"},
        {"shopify_domain": "evil"},
    ],
)
def test_bad_input_is_400_and_changes_nothing(client, merchant, change):
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="7000001")
    payload = {**_award(merchant, customer), **change}

    answer = _post(client, ACTION_AWARD_POINTS, payload)

    assert answer.status_code == 400 and answer.json()["status"] == "error"
    assert not PointsTransaction.objects.exists()


def test_malformed_json_is_400(client):
    answer = _post(client, ACTION_AWARD_POINTS, None, raw=b"{not json")

    assert answer.status_code == 400 and answer.json()["error"]["code"] == "malformed_request"


def test_the_shop_is_the_signed_one_and_another_shops_customer_is_not_found(client, merchant, other_merchant):
    theirs = other_merchant["customers"][0]

    answer = _post(client, ACTION_AWARD_POINTS, _award(merchant, theirs))
    mismatch = _post(
        client, ACTION_AWARD_POINTS, _award(other_merchant["merchant"], theirs), shop_header=merchant.shop_domain
    )

    assert answer.status_code == 404 and mismatch.status_code == 400
    assert not PointsTransaction.objects.exists()


def test_a_feature_registers_its_own_action(client, merchant):
    seen = []

    def badge_award(*, merchant, action_run_id, properties):
        seen.append((merchant.pk, action_run_id, properties))
        return {"badge": properties["badge"]}

    register_flow_action("loyalnest-test-award-badge", badge_award)
    customer = CustomerFactory(merchant=merchant)
    payload = {**_award(merchant, customer), "handle": "loyalnest-test-award-badge", "properties": {"badge": "b1"}}

    answer = _post(client, "loyalnest-test-award-badge", payload)

    assert answer.status_code == 200 and answer.json()["badge"] == "b1"
    assert seen == [(merchant.pk, "run-1", {"badge": "b1"})]
    assert ACTION_AWARD_POINTS in flow_action_handles()
    with pytest.raises(ValueError):
        register_flow_action("loyalnest-test-award-badge", lambda **kwargs: {})
