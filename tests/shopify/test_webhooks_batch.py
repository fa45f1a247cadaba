"""The drain: a shop's waiting deliveries processed in batches, orders set-wise (issue 3's
throughput), with exactly the outcome of processing them one at a time."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.models import AuditLog, Customer, Order, PointsTransaction
from apps.core.redis import get_redis
from apps.core.services import ledger_balance
from apps.shopify.models import WebhookDelivery
from apps.shopify.shops import shops
from apps.shopify.webhooks.inbox import webhook_delivery_process, webhook_inbox_drain
from apps.shopify.webhooks.tasks import DRAIN_FLAG_SECONDS, inbox_drain_request, webhook_inbox_drain_task
from tests.factories import MerchantFactory
from tests.shopify.webhook_support import BASE_TIME, order_payload, post_webhook, refund_payload

LATER = BASE_TIME + timedelta(minutes=10)

# (topic, payload, webhook id): a burst with every case the batch path must get right.
BURST = [
    ("customers/create", {"id": 7002, "email": "bob@example.com", "first_name": "Bob"}, "c-bob"),
    ("orders/create", order_payload(5001, customer_id=7001, total="40.00", financial_status="pending"), "o1-create"),
    ("orders/paid", order_payload(5001, customer_id=7001, total="40.00", updated_at=LATER), "o1-paid"),
    ("orders/paid", order_payload(5002, customer_id=7002, total="25.50"), "o2-paid"),
    ("orders/updated", order_payload(5001, customer_id=7001, total="40.00", financial_status="pending"), "o1-old"),
    (
        "orders/paid",
        order_payload(
            5003,
            customer_id=7001,
            total="100.00",
            refunds=[refund_payload(91, 5003, "30.00")],
        ),
        "o3-refunded",
    ),
    ("orders/paid", order_payload(5004, customer_id=7002, total="60.00"), "o4-paid"),
    ("orders/cancelled", order_payload(5004, customer_id=7002, total="60.00", cancelled_at=LATER, updated_at=LATER), "o4-cancel"),
    ("orders/paid", order_payload(5005, customer_id=None, total="10.00"), "o5-guest"),
    ("orders/paid", {**order_payload(5006), "updated_at": None}, "o6-invalid"),
    ("refunds/create", refund_payload(92, 5002, "5.50"), "r-o2"),
]  # fmt: skip


def _post_burst(merchant):
    client = Client()
    for topic, payload, webhook_id in BURST:
        response = post_webhook(client, shop=merchant.shop_domain, topic=topic, payload=payload, webhook_id=webhook_id)
        assert response.status_code == 200


def _outcome(merchant) -> dict:
    """Everything the deliveries changed, in comparable form (no ids, no times)."""
    customers = {c.pk: c.shopify_customer_id for c in Customer.objects.filter(merchant=merchant)}
    return {
        "deliveries": sorted(
            WebhookDelivery.objects.filter(merchant=merchant).values_list("webhook_id", "status", "last_error")
        ),
        "ledger": sorted(
            (customers[customer_id], kind, points, key)
            for customer_id, kind, points, key in PointsTransaction.objects.filter(merchant=merchant).values_list(
                "customer_id", "kind", "points", "idempotency_key"
            )
        ),
        "customers": sorted(
            Customer.objects.filter(merchant=merchant).values_list(
                "shopify_customer_id", "email", "points_balance", "lifetime_points", "orders_count", "total_spent"
            )
        ),
        "orders": sorted(
            Order.objects.filter(merchant=merchant).values_list(
                "shopify_order_id", "financial_status", "total_price", "refunded_amount", "cancelled_at"
            )
        ),
        "audit": sorted(AuditLog.objects.filter(merchant=merchant).values_list("action", flat=True)),
    }


def test_a_burst_drained_in_one_batch_ends_exactly_as_one_delivery_at_a_time(merchant, other_merchant):
    foreign = other_merchant["merchant"]
    foreign_before = _outcome(foreign)
    _post_burst(merchant)
    one_at_a_time = MerchantFactory(shop_domain="one-at-a-time.myshopify.com")
    _post_burst(one_at_a_time)

    drained = webhook_inbox_drain(merchant=merchant, limit=50)
    for delivery_id in (
        WebhookDelivery.objects.filter(merchant=one_at_a_time).order_by("received_at").values_list("pk", flat=True)
    ):
        webhook_delivery_process(merchant=one_at_a_time, delivery_id=delivery_id)

    assert (drained.claimed, drained.retry_in) == (len(BURST), None)
    batch = _outcome(merchant)
    assert batch == _outcome(one_at_a_time)
    statuses = {webhook_id: status for webhook_id, status, _error in batch["deliveries"]}
    assert statuses == {
        "c-bob": "processed",
        "o1-create": "processed",
        "o1-paid": "processed",
        "o1-old": "skipped",  # older than the stored order (A4)
        "o2-paid": "processed",
        "o3-refunded": "processed",
        "o4-paid": "processed",
        "o4-cancel": "processed",
        "o5-guest": "processed",
        "o6-invalid": "failed",
        "r-o2": "processed",
    }
    assert {w: e for w, _s, e in batch["deliveries"]}["o6-invalid"].startswith("invalid payload")
    assert batch["ledger"] == sorted(
        [
            ("7001", "earn", 40, "order:5001:earn"),
            ("7001", "earn", 100, "order:5003:earn"),
            ("7001", "reverse", -30, "order:5003:refund:91"),
            ("7002", "earn", 25, "order:5002:earn"),
            ("7002", "reverse", -5, "order:5002:refund:92"),
            ("7002", "earn", 60, "order:5004:earn"),
            ("7002", "reverse", -60, "order:5004:cancel"),
        ]
    )
    ada = Customer.objects.get(merchant=merchant, shopify_customer_id="7001")
    bob = Customer.objects.get(merchant=merchant, shopify_customer_id="7002")
    assert (ada.points_balance, ada.orders_count, ada.total_spent) == (110, 2, 110)
    assert (bob.email, bob.points_balance, bob.orders_count, bob.total_spent) == ("bob@example.com", 20, 1, 20)
    for someone in (ada, bob):
        assert ledger_balance(merchant=merchant, customer=someone) == someone.points_balance
    assert _outcome(foreign) == foreign_before
    # Nothing is left for a second drain.
    assert webhook_inbox_drain(merchant=merchant, limit=50).claimed == 0


def test_a_batch_that_fails_as_a_whole_is_taken_one_delivery_at_a_time(merchant):
    client = Client()
    for order_id, total in ((5101, "20.00"), (5102, "99999999.00"), (5103, "30.00")):  # 5102: over the per-entry cap
        post_webhook(
            client,
            shop=merchant.shop_domain,
            topic="orders/paid",
            payload=order_payload(order_id, total=total),
            webhook_id=f"o{order_id}",
        )

    assert webhook_inbox_drain(merchant=merchant, limit=50).claimed == 3

    rows = dict(WebhookDelivery.objects.filter(merchant=merchant).values_list("webhook_id", "status"))
    assert rows == {"o5101": "processed", "o5102": "failed", "o5103": "processed"}
    failed = WebhookDelivery.objects.get(merchant=merchant, webhook_id="o5102")
    assert failed.last_error.startswith("ValidationFailed") and failed.attempts == 1
    assert sorted(PointsTransaction.objects.filter(merchant=merchant).values_list("points", flat=True)) == [20, 30]
    assert not Order.objects.filter(merchant=merchant, shopify_order_id="5102").exists()  # rolled back with it


def test_a_delivery_left_for_a_retry_waits_until_it_is_due(merchant):
    client = Client()
    post_webhook(
        client,
        shop=merchant.shop_domain,
        topic="refunds/create",
        payload=refund_payload(93, 5201, "10.00"),
        webhook_id="r",
    )

    first = webhook_inbox_drain(merchant=merchant, limit=50)
    refund = WebhookDelivery.objects.get(merchant=merchant, webhook_id="r")
    assert (refund.status, refund.attempts) == ("received", 1) and refund.last_error.startswith("OrderNotYetKnown")
    assert first.claimed == 1 and 0 < first.retry_in <= 2
    assert refund.retry_at > timezone.now()
    assert webhook_inbox_drain(merchant=merchant, limit=50).claimed == 0  # not due yet

    post_webhook(
        client,
        shop=merchant.shop_domain,
        topic="orders/paid",
        payload=order_payload(5201, total="50.00"),
        webhook_id="o",
    )
    WebhookDelivery.objects.filter(pk=refund.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
    assert webhook_inbox_drain(merchant=merchant, limit=50).claimed == 2
    refund.refresh_from_db()
    assert (refund.status, refund.retry_at) == ("processed", None)
    assert sorted(PointsTransaction.objects.filter(merchant=merchant).values_list("points", flat=True)) == [-10, 50]


def test_a_burst_queues_one_drain_and_the_drain_takes_everything_stored_before_it_ran(merchant):
    flag = f"{merchant.pk}:webhooks:drain-queued"
    client = Client()
    for order_id in (5301, 5302, 5303):
        post_webhook(
            client,
            shop=merchant.shop_domain,
            topic="orders/paid",
            payload=order_payload(order_id),
            webhook_id=str(order_id),
        )
    assert 0 < get_redis().ttl(flag) <= DRAIN_FLAG_SECONDS  # set by the first delivery, kept by the others
    assert inbox_drain_request(merchant_id=merchant.pk) is True  # already queued: nothing published

    assert webhook_inbox_drain_task.run(merchant_id=merchant.pk) == 3

    assert not get_redis().exists(flag)  # the next delivery queues the next drain
    assert set(WebhookDelivery.objects.filter(merchant=merchant).values_list("status", flat=True)) == {"processed"}
    assert PointsTransaction.objects.filter(merchant=merchant).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_shop_erased_after_its_id_was_cached_gets_404_and_nothing_is_stored():
    merchant = MerchantFactory(shop_domain="erased-soon.myshopify.com")
    client = Client()
    # A body that is stored but never processed (nothing else comes to reference the shop).
    first = post_webhook(client, shop=merchant.shop_domain, topic="orders/paid", payload=b"[1]", webhook_id="a")
    assert first.status_code == 400
    assert shops.merchant(merchant.shop_domain).pk == merchant.pk  # cached
    merchant.delete()

    again = post_webhook(
        client, shop="erased-soon.myshopify.com", topic="orders/paid", payload=order_payload(5402), webhook_id="b"
    )
    then = post_webhook(
        client, shop="erased-soon.myshopify.com", topic="orders/paid", payload=order_payload(5403), webhook_id="c"
    )

    assert (again.status_code, then.status_code) == (404, 404)
    assert not WebhookDelivery.objects.filter(webhook_id__in=["b", "c"]).exists()
