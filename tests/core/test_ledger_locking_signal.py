"""`ledger_customers_locking` fires before every ledger write locks its customers (the hook a
store group uses to take its shared-account locks first, in one global order)."""

import pytest
from django.db import connection

from apps.core.services import Earn, points_earn, points_earn_many, points_redeem
from apps.core.signals import ledger_customers_locking
from tests.factories import CustomerFactory


@pytest.fixture
def received():
    calls = []

    def receiver(sender, *, merchant, customer_ids, **kwargs):
        # Sent inside the writing transaction, before the customer rows are locked.
        calls.append((merchant.pk, list(customer_ids), connection.in_atomic_block))

    ledger_customers_locking.connect(receiver, dispatch_uid="test-locking")
    yield calls
    ledger_customers_locking.disconnect(dispatch_uid="test-locking")


@pytest.mark.django_db
def test_each_ledger_write_announces_the_customers_it_locks(merchant, received):
    first, second = CustomerFactory(merchant=merchant), CustomerFactory(merchant=merchant)
    points_earn(merchant=merchant, customer=first, points=10, idempotency_key="e1")
    points_redeem(merchant=merchant, customer=first, points=5, idempotency_key="r1")
    points_earn_many(
        merchant=merchant,
        earns=[
            Earn(customer_id=second.pk, points=3, idempotency_key="b1"),
            Earn(customer_id=first.pk, points=4, idempotency_key="b2"),
        ],
    )
    assert received == [
        (merchant.pk, [first.pk], True),
        (merchant.pk, [first.pk], True),
        (merchant.pk, sorted([first.pk, second.pk]), True),
    ]
