"""The in-transaction signals feature apps listen to (apps/core/signals.py)."""

import pytest
from django.test import Client

from apps.core.models import PointsTransaction
from apps.core.services import Earn, points_earn, points_earn_many, points_redeem
from apps.core.signals import ledger_entries_written, orders_synced
from apps.shopify.webhooks.inbox import webhook_inbox_drain
from tests.factories import CustomerFactory
from tests.shopify.webhook_support import order_payload, post_webhook, refund_payload


@pytest.fixture
def received():
    """Every send of both signals, as (signal name, merchant id, row ids)."""
    calls = []

    def on_ledger(sender, *, merchant, entries, **kwargs):
        calls.append(("ledger", merchant.pk, [entry.pk for entry in entries]))

    def on_orders(sender, *, merchant, orders, **kwargs):
        calls.append(("orders", merchant.pk, sorted(order.shopify_order_id for order in orders)))

    ledger_entries_written.connect(on_ledger, weak=False)
    orders_synced.connect(on_orders, weak=False)
    yield calls
    ledger_entries_written.disconnect(on_ledger)
    orders_synced.disconnect(on_orders)


def test_every_ledger_write_is_announced_once_with_its_entries(merchant, customer, received):
    earned = points_earn(merchant=merchant, customer=customer, points=50, idempotency_key="a").transaction
    points_earn(merchant=merchant, customer=customer, points=50, idempotency_key="a")  # replay: nothing new
    spent = points_redeem(merchant=merchant, customer=customer, points=20, idempotency_key="b").transaction
    other = CustomerFactory(merchant=merchant)
    batch = points_earn_many(
        merchant=merchant,
        earns=[
            Earn(customer_id=customer.pk, points=5, idempotency_key="c"),
            Earn(customer_id=other.pk, points=7, idempotency_key="d"),
        ],
    )

    assert received == [
        ("ledger", merchant.pk, [earned.pk]),
        ("ledger", merchant.pk, [spent.pk]),
        ("ledger", merchant.pk, [entry.pk for entry in batch]),
    ]


def test_a_receiver_that_fails_rolls_the_change_back(merchant, customer):
    def refuse(sender, **kwargs):
        raise RuntimeError("listener failed")

    ledger_entries_written.connect(refuse, weak=False)
    try:
        with pytest.raises(RuntimeError):
            points_earn(merchant=merchant, customer=customer, points=50, idempotency_key="a")
    finally:
        ledger_entries_written.disconnect(refuse)

    customer.refresh_from_db()
    assert customer.points_balance == 0
    assert not PointsTransaction.objects.filter(merchant=merchant).exists()


def test_a_drained_batch_announces_its_orders_once_per_round(merchant, other_merchant, received):
    client = Client()
    for webhook_id, topic, payload in [
        ("a", "orders/paid", order_payload(8001, total="10.00")),
        ("b", "orders/paid", order_payload(8002, total="20.00", customer_id=7002)),
        ("c", "orders/updated", order_payload(8001, total="10.00")),  # same order again: a second round
        ("d", "refunds/create", refund_payload(1, 8002, "5.00")),
    ]:
        post_webhook(client, shop=merchant.shop_domain, topic=topic, payload=payload, webhook_id=webhook_id)

    webhook_inbox_drain(merchant=merchant, limit=50)

    orders = [call for call in received if call[0] == "orders"]
    assert orders == [
        ("orders", merchant.pk, ["8001", "8002"]),
        ("orders", merchant.pk, ["8001"]),
        ("orders", merchant.pk, ["8002"]),  # the refund
    ]
    ledger = [call for call in received if call[0] == "ledger"]
    assert [len(ids) for _name, _merchant, ids in ledger] == [2, 1]  # the two earns together, the reversal
    assert all(merchant_id == merchant.pk for _name, merchant_id, _ids in received)
