"""PostgreSQL refuses UPDATE and DELETE of shared ledger entries (migration 0002); only the
references to an erased customer or store entry may be cleared, and only the entries of an
uninstalled shop may be erased (shop/redact)."""

import pytest
from django.db import IntegrityError, connection, transaction

from apps.core.models import Merchant
from apps.core.services import points_earn
from apps.multistore.models import SharedLedgerEntry

from .test_ledger import _linked

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")


@pytest.fixture
def entries(group, stores):
    us, _eu, _jp = _linked(group, stores, balances=(100, 50, 0))
    points_earn(merchant=us.merchant, customer=us, points=30, idempotency_key="after-link")
    return SharedLedgerEntry.objects.filter(account_id=us.shared_customer_id)


@pytest.mark.parametrize(
    "change",
    [{"points": 1_000}, {"balance_after": 0}, {"kind": "link"}, {"source_merchant_id": "mer_x"}, {"account_id": "x"}],
)
def test_updates_of_values_are_refused(entries, change):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        entries.filter(points__gt=0).update(**change)


def test_deletes_are_refused(entries):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        entries.all()._raw_delete(entries.db)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM multistore_shared_entries")
    assert entries.count() == 4


def test_references_may_be_cleared_and_an_uninstalled_shops_entries_erased(entries, stores):
    (us, _), _eu, _jp = stores
    assert entries.update(source_customer=None, source_transaction=None) == 4
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        entries.update(source_customer_id=entries.first().account_id)  # pointing elsewhere is not clearing
    Merchant.objects.filter(pk=us.pk).update(is_installed=False)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM multistore_shared_entries WHERE source_merchant_id = %s", [us.pk])
        assert cursor.rowcount == 2
    assert entries.count() == 2
