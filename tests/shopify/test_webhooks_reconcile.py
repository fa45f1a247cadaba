"""Reconciliation (A5): missed orders are recovered through the webhook handler, once."""

from datetime import timedelta

from apps.core.models import Customer, Order, PointsTransaction
from apps.shopify.models import ShopifyInstallation, SyncWatermark
from apps.shopify.webhooks.reconciliation import orders_reconcile, reconcilable_merchant_ids
from tests.fakes.shopify_ops_webhooks import add_order
from tests.shopify.test_webhooks import deliver
from tests.shopify.webhook_support import BASE_TIME, graphql_order_node, order_payload


def _connect(fake_shopify, merchant):
    access, refresh = fake_shopify.issue_tokens(merchant.shop_domain)
    ShopifyInstallation.objects.filter(merchant=merchant).update(needs_reauth=False)
    installation = ShopifyInstallation.objects.get(merchant=merchant)
    installation.access_token, installation.refresh_token = access, refresh
    installation.save()


def test_reconciliation_recovers_missed_orders_once_and_advances_the_watermark(
    client, merchant, other_merchant, fake_shopify
):
    _connect(fake_shopify, merchant)
    SyncWatermark.objects.create(merchant=merchant, resource="orders", watermark=BASE_TIME - timedelta(hours=1))
    # Order 5001 reached us by webhook; 5002–5004 were missed; 5000 is older than the watermark.
    deliver(client, merchant, "orders/paid", order_payload(5001, total="10.00"), webhook_id="seen")
    for order_id, minutes, refunds in [
        (5000, -120, ()),
        (5001, 0, ()),
        (5002, 1, ()),
        (5003, 2, [(77, "20.00")]),
        (5004, 3, ()),
    ]:
        node = graphql_order_node(
            order_id,
            customer_id=7001,
            total="10.00" if order_id == 5001 else "40.00",
            updated_at=BASE_TIME + timedelta(minutes=minutes),
            refunds=refunds,
        )
        add_order(fake_shopify, merchant.shop_domain, node)
    add_order(
        fake_shopify,
        other_merchant["merchant"].shop_domain,
        graphql_order_node(5002, customer_id=1, total="99.00", updated_at=BASE_TIME),
    )
    foreign_entries = PointsTransaction.objects.filter(merchant=other_merchant["merchant"]).count()

    read = orders_reconcile(merchant=merchant, page_size=2)

    assert read == 4  # 5001..5004, two pages of two
    assert [v["after"] for _, v in fake_shopify.calls_of("ReconcileOrders")] == [None, "2"]
    entries = sorted(PointsTransaction.objects.filter(merchant=merchant).values_list("idempotency_key", "points"))
    assert entries == [
        ("order:5001:earn", 10),
        ("order:5002:earn", 40),
        ("order:5003:earn", 40),
        ("order:5003:refund:77", -20),
        ("order:5004:earn", 40),
    ]
    assert not Order.objects.filter(merchant=merchant, shopify_order_id="5000").exists()
    watermark = SyncWatermark.objects.get(merchant=merchant, resource="orders").watermark
    assert watermark == BASE_TIME + timedelta(minutes=3)
    customer = Customer.objects.get(merchant=merchant, shopify_customer_id="7001")
    assert customer.points_balance == 110 and customer.orders_count == 4

    # Next run: only the boundary order is read again, and nothing is credited twice.
    assert orders_reconcile(merchant=merchant) == 1
    assert PointsTransaction.objects.filter(merchant=merchant).count() == 5
    assert PointsTransaction.objects.filter(merchant=other_merchant["merchant"]).count() == foreign_entries
    assert not Order.objects.filter(merchant=other_merchant["merchant"], shopify_order_id="5002").exists()
    assert all(shop == merchant.shop_domain for shop, _ in fake_shopify.calls_of("ReconcileOrders"))


def test_only_installed_shops_with_working_tokens_are_reconciled(merchant, other_merchant):
    other = other_merchant["merchant"]
    ShopifyInstallation.objects.filter(merchant=other).update(needs_reauth=True)

    assert merchant.pk in reconcilable_merchant_ids()
    assert other.pk not in reconcilable_merchant_ids()
