"""Webhook intake (A1–A3) and processing (A4, C5): verified, stored once, applied once."""

import json
import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.core.models import AuditLog, Customer, Order, PointsTransaction
from apps.core.services import ledger_balance
from apps.shopify.admin import WebhookDeliveryAdmin
from apps.shopify.models import ShopifyInstallation, ShopifyRefund, WebhookDelivery, WebhookStatus
from apps.shopify.webhooks.handlers import HANDLERS
from apps.shopify.webhooks.inbox import DeliveryRetry, webhook_delivery_process, webhook_inbox_stale_list
from tests.shopify.webhook_support import (
    BASE_TIME,
    WEBHOOK_URL,
    order_payload,
    post_webhook,
    refund_payload,
    sign,
    webhook_headers,
)

ROOT = Path(__file__).resolve().parents[2]


def deliver(client, merchant, topic, payload, **kwargs):
    """Post a signed delivery and process it in this process; returns the inbox row."""
    webhook_id = kwargs.pop("webhook_id", None) or f"wh-{topic}-{json.dumps(payload, sort_keys=True).__hash__()}"
    response = post_webhook(
        client, shop=merchant.shop_domain, topic=topic, payload=payload, webhook_id=webhook_id, **kwargs
    )
    assert response.status_code == 200, response.content
    delivery = WebhookDelivery.objects.get(merchant=merchant, webhook_id=webhook_id)
    webhook_delivery_process(merchant=merchant, delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def earned(merchant):
    return list(
        PointsTransaction.objects.filter(merchant=merchant).order_by("created_at").values_list("kind", "points")
    )


def snapshot(other_merchant):
    merchant = other_merchant["merchant"]
    return (
        sorted(Customer.objects.filter(merchant=merchant).values_list("pk", "email", "points_balance")),
        PointsTransaction.objects.filter(merchant=merchant).count(),
        WebhookDelivery.objects.filter(merchant=merchant).count(),
        Order.objects.filter(merchant=merchant).count(),
    )


# --- intake ------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefixed", [True, False], ids=["x-shopify-headers", "shopify-headers"])
def test_a_signed_delivery_is_stored_verbatim_and_answered_200(client, merchant, other_merchant, prefixed):
    before = snapshot(other_merchant)
    payload = order_payload(1001)

    response = post_webhook(
        client, shop=merchant.shop_domain, topic="orders/paid", payload=payload, webhook_id="wh-1", prefixed=prefixed
    )

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get(merchant=merchant)
    assert (delivery.webhook_id, delivery.topic, delivery.api_version) == ("wh-1", "orders/paid", "2026-10")
    assert delivery.event_id and delivery.triggered_at == BASE_TIME
    assert delivery.body == payload and delivery.status == WebhookStatus.RECEIVED
    assert snapshot(other_merchant) == before


@pytest.mark.parametrize("prefixed", [True, False], ids=["x-shopify-headers", "shopify-headers"])
@pytest.mark.parametrize(
    "case", ["missing", "wrong-secret", "tampered-body", "not-base64", "empty"], ids=lambda case: case
)
def test_a_bad_or_missing_hmac_is_refused_with_401_and_nothing_is_stored(
    client, merchant, other_merchant, case, prefixed
):
    before = snapshot(other_merchant)
    body = json.dumps(order_payload(1002)).encode()
    kwargs = {
        "missing": {"hmac_value": None},
        "wrong-secret": {"secret": "not-the-app-secret"},
        "tampered-body": {"hmac_value": sign(body + b" ")},
        "not-base64": {"hmac_value": "zz%%"},
        "empty": {"hmac_value": ""},
    }[case]
    headers = webhook_headers(shop=merchant.shop_domain, topic="orders/paid", body=body, prefixed=prefixed, **kwargs)
    if case == "missing":
        headers = {k: v for k, v in headers.items() if not k.endswith("HMAC_SHA256")}

    response = client.generic("POST", WEBHOOK_URL, body, content_type="application/json", **headers)

    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()
    assert snapshot(other_merchant) == before


def test_the_previous_secret_is_accepted_during_a_rotation(client, merchant, settings):
    settings.SHOPIFY_API_SECRET_PREVIOUS = "the-secret-before-the-rotation"
    payload = order_payload(1003)

    old = post_webhook(
        client, shop=merchant.shop_domain, topic="orders/paid", payload=payload, secret="the-secret-before-the-rotation"
    )
    new = post_webhook(client, shop=merchant.shop_domain, topic="orders/updated", payload=payload)
    settings.SHOPIFY_API_SECRET_PREVIOUS = ""
    after_window = post_webhook(
        client,
        shop=merchant.shop_domain,
        topic="orders/create",
        payload=payload,
        secret="the-secret-before-the-rotation",
    )

    assert (old.status_code, new.status_code, after_window.status_code) == (200, 200, 401)
    assert WebhookDelivery.objects.filter(merchant=merchant).count() == 2


def test_an_unknown_shop_gets_404_and_nothing_is_stored(client, merchant, other_merchant):
    response = post_webhook(client, shop="nobody-here.myshopify.com", topic="orders/paid", payload=order_payload(1004))
    spoofed = post_webhook(client, shop="not a shop", topic="orders/paid", payload=order_payload(1004))

    assert (response.status_code, spoofed.status_code) == (404, 404)
    assert not WebhookDelivery.objects.exists()


def test_a_malformed_body_is_400_stored_failed_with_the_reason_and_never_retried(client, merchant, other_merchant):
    before = snapshot(other_merchant)
    body = b'{"id": 1005, "total_price": '

    first = post_webhook(client, shop=merchant.shop_domain, topic="orders/paid", payload=body, webhook_id="wh-bad")
    again = post_webhook(client, shop=merchant.shop_domain, topic="orders/paid", payload=body, webhook_id="wh-bad")
    not_an_object = post_webhook(client, shop=merchant.shop_domain, topic="orders/paid", payload=b"[1, 2]")

    assert (first.status_code, again.status_code, not_an_object.status_code) == (400, 200, 400)
    bad = WebhookDelivery.objects.get(merchant=merchant, webhook_id="wh-bad")
    assert bad.status == WebhookStatus.FAILED
    assert bad.last_error.startswith("payload is not valid JSON")
    assert webhook_delivery_process(merchant=merchant, delivery_id=bad.pk) is None  # not pending: never retried
    assert WebhookDelivery.objects.filter(merchant=merchant).count() == 2
    assert snapshot(other_merchant) == before


def test_a_redelivery_is_answered_200_without_a_second_row(client, merchant):
    responses = [
        post_webhook(
            client, shop=merchant.shop_domain, topic="orders/paid", payload=order_payload(1006), webhook_id="wh-same"
        )
        for _ in range(5)
    ]

    assert {r.status_code for r in responses} == {200}
    assert WebhookDelivery.objects.filter(merchant=merchant).count() == 1


def test_only_post_is_allowed(client, merchant):
    assert client.get(WEBHOOK_URL).status_code == 405


# --- processing: orders ------------------------------------------------------------------------
def test_orders_paid_earns_points_by_the_earning_rule_once(client, merchant, other_merchant):
    before = snapshot(other_merchant)
    merchant.program_settings.points_per_currency_unit = Decimal("2.00")
    merchant.program_settings.save()
    payload = order_payload(2001, total="99.99")

    first = deliver(client, merchant, "orders/paid", payload, webhook_id="a")
    for topic, webhook_id in [("orders/paid", "b"), ("orders/updated", "c"), ("orders/create", "d")]:
        deliver(client, merchant, topic, payload, webhook_id=webhook_id)

    assert first.status == WebhookStatus.PROCESSED and first.attempts == 1 and first.processed_at
    customer = Customer.objects.get(merchant=merchant, shopify_customer_id="7001")
    assert earned(merchant) == [("earn", 199)]
    assert customer.points_balance == 199 == ledger_balance(merchant=merchant, customer=customer)
    assert (customer.orders_count, customer.total_spent) == (1, Decimal("99.99"))
    assert customer.last_order_at == BASE_TIME - timedelta(minutes=5)
    order = Order.objects.get(merchant=merchant, shopify_order_id="2001")
    assert order.customer == customer and order.shopify_updated_at == BASE_TIME
    assert snapshot(other_merchant) == before


def test_an_unpaid_order_earns_nothing_until_it_is_paid(client, merchant):
    deliver(client, merchant, "orders/create", order_payload(2002, financial_status="pending"), webhook_id="a")
    assert earned(merchant) == []

    deliver(
        client,
        merchant,
        "orders/paid",
        order_payload(2002, updated_at=BASE_TIME + timedelta(minutes=1)),
        webhook_id="b",
    )

    assert earned(merchant) == [("earn", 100)]


def test_an_older_update_never_overwrites_a_newer_one(client, merchant):
    newer = order_payload(
        2003, total="80.00", financial_status="partially_refunded", updated_at=BASE_TIME + timedelta(hours=2)
    )
    older = order_payload(2003, total="100.00", financial_status="pending", updated_at=BASE_TIME)

    deliver(client, merchant, "orders/updated", newer, webhook_id="newer")
    stale = deliver(client, merchant, "orders/updated", older, webhook_id="older")

    order = Order.objects.get(merchant=merchant, shopify_order_id="2003")
    assert (order.total_price, order.financial_status) == (Decimal("80.00"), "partially_refunded")
    assert order.shopify_updated_at == BASE_TIME + timedelta(hours=2)
    assert stale.status == WebhookStatus.SKIPPED


def test_a_cancelled_order_is_not_credited_by_an_older_paid_delivery(client, merchant):
    cancelled = order_payload(
        2004, updated_at=BASE_TIME + timedelta(hours=1), cancelled_at=BASE_TIME + timedelta(hours=1)
    )
    deliver(client, merchant, "orders/cancelled", cancelled, webhook_id="cancel")
    deliver(client, merchant, "orders/paid", order_payload(2004), webhook_id="paid-late")

    assert earned(merchant) == []
    assert Customer.objects.get(merchant=merchant, shopify_customer_id="7001").orders_count == 0


def test_refunds_reverse_proportionally_once_per_refund_and_cancel_reverses_the_rest_once(
    client, merchant, other_merchant
):
    before = snapshot(other_merchant)
    deliver(client, merchant, "orders/paid", order_payload(2005, total="200.00"), webhook_id="paid")  # 200 points

    deliver(client, merchant, "refunds/create", refund_payload(91, 2005, "50.00"), webhook_id="r1")
    deliver(client, merchant, "refunds/create", refund_payload(91, 2005, "50.00"), webhook_id="r1-again")
    deliver(client, merchant, "refunds/create", refund_payload(92, 2005, "33.33"), webhook_id="r2")
    cancelled = order_payload(
        2005, total="200.00", updated_at=BASE_TIME + timedelta(hours=3), cancelled_at=BASE_TIME + timedelta(hours=3)
    )
    deliver(client, merchant, "orders/cancelled", cancelled, webhook_id="cancel")
    deliver(client, merchant, "orders/cancelled", cancelled, webhook_id="cancel-again")
    deliver(client, merchant, "orders/updated", cancelled, webhook_id="update-after-cancel")

    assert earned(merchant) == [("earn", 200), ("reverse", -50), ("reverse", -33), ("reverse", -117)]
    order = Order.objects.get(merchant=merchant, shopify_order_id="2005")
    assert order.refunded_amount == Decimal("83.33")
    assert ShopifyRefund.objects.filter(merchant=merchant, order=order).count() == 2
    customer = order.customer
    customer.refresh_from_db()
    assert customer.points_balance == 0 == ledger_balance(merchant=merchant, customer=customer)
    assert customer.lifetime_points == 0
    assert snapshot(other_merchant) == before


def test_a_full_refund_reverses_every_point_despite_rounding(client, merchant):
    deliver(client, merchant, "orders/paid", order_payload(2006, total="99.00"), webhook_id="paid")
    for refund_id, amount in [(81, "33.00"), (82, "33.00"), (83, "33.00")]:
        deliver(client, merchant, "refunds/create", refund_payload(refund_id, 2006, amount), webhook_id=f"r{refund_id}")

    assert earned(merchant) == [("earn", 99), ("reverse", -33), ("reverse", -33), ("reverse", -33)]
    assert Order.objects.get(merchant=merchant, shopify_order_id="2006").refunded_amount == Decimal("99.00")


def test_refunds_carried_by_an_order_update_count_once_with_refunds_create(client, merchant):
    deliver(client, merchant, "orders/paid", order_payload(2007, total="100.00"), webhook_id="paid")
    refund = refund_payload(71, 2007, "40.00")
    deliver(client, merchant, "refunds/create", refund, webhook_id="refund")
    update = order_payload(
        2007,
        total="100.00",
        financial_status="partially_refunded",
        updated_at=BASE_TIME + timedelta(hours=2),
        refunds=[refund],
    )
    deliver(client, merchant, "orders/updated", update, webhook_id="update")

    assert earned(merchant) == [("earn", 100), ("reverse", -40)]
    customer = Customer.objects.get(merchant=merchant, shopify_customer_id="7001")
    assert customer.total_spent == Decimal("60.00")


def test_a_refund_before_its_order_is_retried_and_then_fails_visibly(client, merchant, settings):
    settings.SHOPIFY_WEBHOOK_MAX_ATTEMPTS = 2
    post_webhook(
        client,
        shop=merchant.shop_domain,
        topic="refunds/create",
        payload=refund_payload(61, 2008, "10.00"),
        webhook_id="early",
    )
    delivery = WebhookDelivery.objects.get(merchant=merchant, webhook_id="early")

    with pytest.raises(DeliveryRetry):
        webhook_delivery_process(merchant=merchant, delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookStatus.RECEIVED, 1)
    assert delivery.last_error.startswith("OrderNotYetKnown")

    assert webhook_delivery_process(merchant=merchant, delivery_id=delivery.pk) == WebhookStatus.FAILED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookStatus.FAILED, 2)


def test_a_poison_message_fails_with_its_reason_and_staff_can_reprocess_it(client, merchant, rf):
    payload = order_payload(2009)
    payload["total_price"] = "a lot"
    delivery = deliver(client, merchant, "orders/paid", payload, webhook_id="poison")

    assert delivery.status == WebhookStatus.FAILED
    assert delivery.last_error == "invalid payload: total_price is not an amount"
    assert delivery.attempts == 1 and not earned(merchant)

    # Shopify support fixed the data; staff reprocess the delivery from admin.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(body=order_payload(2009))
    staff = get_user_model().objects.create_superuser("ops", "ops@loyalnest.example", "pw")
    request = rf.post("/admin/shopify/webhookdelivery/")
    request.user = staff
    request._messages = type("Messages", (), {"add": lambda *args, **kwargs: None})()
    from django.contrib import admin as django_admin

    model_admin = WebhookDeliveryAdmin(WebhookDelivery, django_admin.site)
    model_admin.reprocess(request, WebhookDelivery.objects.filter(pk=delivery.pk))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (WebhookStatus.RECEIVED, 0, "")
    assert AuditLog.objects.filter(merchant=merchant, action="webhook_reprocessed", target_id=delivery.pk).exists()
    assert webhook_delivery_process(merchant=merchant, delivery_id=delivery.pk) == WebhookStatus.PROCESSED
    assert earned(merchant) == [("earn", 100)]


def test_webhook_deliveries_are_read_only_in_admin_and_bodies_masked_without_permission(admin_client, client, merchant):
    deliver(client, merchant, "orders/paid", order_payload(2010), webhook_id="shown")
    delivery = WebhookDelivery.objects.get(webhook_id="shown")

    listing = admin_client.get("/admin/shopify/webhookdelivery/")
    detail = admin_client.get(f"/admin/shopify/webhookdelivery/{delivery.pk}/change/")

    assert listing.status_code == 200 and detail.status_code == 200
    assert b"ada@example.com" in detail.content  # the superuser holds the personal-data permission
    assert AuditLog.objects.filter(action="webhook_payload_viewed", target_id=delivery.pk).exists()
    assert admin_client.post(f"/admin/shopify/webhookdelivery/{delivery.pk}/delete/").status_code == 403


# --- processing: customers, uninstall ------------------------------------------------------------
def test_orders_before_the_customer_create_it_and_customers_webhooks_fill_it_in_order(client, merchant, other_merchant):
    before = snapshot(other_merchant)
    deliver(client, merchant, "orders/paid", order_payload(3001, customer_id=7100), webhook_id="order")
    bare = Customer.objects.get(merchant=merchant, shopify_customer_id="7100")
    assert (bare.email, bare.points_balance) == ("", 100)

    newer = {"id": 7100, "email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper", "locale": "de-DE"}
    older = {**newer, "email": "old@example.com", "first_name": "Old"}
    deliver(client, merchant, "customers/create", newer, webhook_id="c1", triggered_at=BASE_TIME + timedelta(minutes=5))
    stale = deliver(client, merchant, "customers/update", older, webhook_id="c0", triggered_at=BASE_TIME)

    customer = Customer.objects.get(pk=bare.pk)
    assert (customer.email, customer.first_name, customer.last_name, customer.locale) == (
        "grace@example.com",
        "Grace",
        "Hopper",
        "de",
    )
    assert customer.points_balance == 100 and stale.status == WebhookStatus.SKIPPED
    assert snapshot(other_merchant) == before


def test_customers_webhooks_store_phone_and_marketing_consent(client, merchant, other_merchant):
    before = snapshot(other_merchant)
    payload = {
        "id": 7200,
        "email": "lin@example.com",
        "phone": "+14155550100",
        "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
        "sms_marketing_consent": {"state": "not_subscribed", "opt_in_level": "single_opt_in"},
    }
    deliver(client, merchant, "customers/create", payload, webhook_id="k1", triggered_at=BASE_TIME)
    customer = Customer.objects.get(merchant=merchant, shopify_customer_id="7200")
    assert (customer.phone, customer.email_marketing_consent, customer.sms_marketing_consent) == (
        "+14155550100",
        "subscribed",
        "not_subscribed",
    )

    # Consent withdrawn in Shopify; a payload without consent objects clears the state.
    withdrawn = {**payload, "email_marketing_consent": {"state": "unsubscribed"}, "sms_marketing_consent": None}
    deliver(client, merchant, "customers/update", withdrawn, webhook_id="k2", triggered_at=BASE_TIME + timedelta(1))
    customer.refresh_from_db()
    assert (customer.email_marketing_consent, customer.sms_marketing_consent) == ("unsubscribed", "")
    assert snapshot(other_merchant) == before


def test_app_uninstalled_revokes_the_tokens(client, merchant, other_merchant):
    ShopifyInstallation.objects.update_or_create(
        merchant=merchant,
        defaults={
            "access_token": "shpat_x",
            "access_token_expires_at": timezone.now() + timedelta(hours=1),
            "refresh_token": "shprt_x",
            "refresh_token_expires_at": timezone.now() + timedelta(days=90),
        },
    )

    delivery = deliver(client, merchant, "app/uninstalled", {"id": 1, "domain": merchant.shop_domain}, webhook_id="bye")

    merchant.refresh_from_db()
    installation = ShopifyInstallation.objects.get(merchant=merchant)
    assert delivery.status == WebhookStatus.PROCESSED
    assert (installation.access_token, installation.refresh_token, merchant.is_installed) == ("", "", False)
    assert other_merchant["merchant"].is_installed


def test_the_sweep_finds_deliveries_left_received(client, merchant, other_merchant):
    post_webhook(client, shop=merchant.shop_domain, topic="orders/paid", payload=order_payload(3002), webhook_id="old")
    post_webhook(client, shop=merchant.shop_domain, topic="orders/paid", payload=order_payload(3003), webhook_id="new")
    old = WebhookDelivery.objects.get(webhook_id="old")
    WebhookDelivery.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(minutes=10))

    assert webhook_inbox_stale_list(older_than=timedelta(minutes=2)) == [(merchant.pk, old.pk)]


# --- configuration -----------------------------------------------------------------------------
def test_every_declared_topic_has_a_handler_and_every_handler_is_declared():
    config = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    declared = set()
    for subscription in config["webhooks"]["subscriptions"]:
        declared |= set(subscription.get("topics", [])) | set(subscription.get("compliance_topics", []))
        assert subscription["uri"].endswith(WEBHOOK_URL)

    assert declared == set(HANDLERS)
    assert config["webhooks"]["api_version"] == "2026-10"
    compliance = {t for s in config["webhooks"]["subscriptions"] for t in s.get("compliance_topics", [])}
    assert compliance == {"customers/data_request", "customers/redact", "shop/redact"}
    scopes = set(config["access_scopes"]["scopes"].split(","))
    assert {"read_customers", "write_customers", "read_orders", "write_app_proxy", "write_discounts"} <= scopes
    assert config["app_proxy"] == {"url": config["app_proxy"]["url"], "subpath": "loyalnest", "prefix": "apps"}
    assert config["app_proxy"]["url"].endswith("/proxy") and config["embedded"] is True
