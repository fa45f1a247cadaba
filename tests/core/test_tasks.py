"""Core Celery tasks, run by a real worker process."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import AuditLog, Customer, IdempotencyRecord
from apps.core.services.maintenance import idempotency_records_purge, vip_tiers_recalculate
from apps.core.tasks import vip_tiers_recalculate_task
from apps.core.tenancy import scopes_disabled
from tests.conftest import wait_for
from tests.factories import CustomerFactory, MerchantFactory, VipTierFactory


def _tiers(merchant):
    return dict(Customer.objects.filter(merchant=merchant).values_list("lifetime_points", "vip_tier_id"))


def test_recalculation_puts_every_customer_in_the_right_tier(merchant, other_merchant):
    silver = VipTierFactory(merchant=merchant, min_lifetime_points=100)
    gold = VipTierFactory(merchant=merchant, min_lifetime_points=1000)
    for points, tier in [(0, gold), (150, None), (999, gold), (1000, None), (5000, silver)]:
        CustomerFactory(merchant=merchant, lifetime_points=points, vip_tier=tier)
    foreign = other_merchant["customers"][0]

    changed = vip_tiers_recalculate(merchant=merchant)

    assert changed == 5
    assert _tiers(merchant) == {0: None, 150: silver.pk, 999: silver.pk, 1000: gold.pk, 5000: gold.pk}
    assert vip_tiers_recalculate(merchant=merchant) == 0
    foreign.refresh_from_db()
    assert foreign.vip_tier_id is None
    assert AuditLog.objects.filter(merchant=merchant, action="vip_tiers_recalculated").count() == 2


def test_old_idempotency_records_are_purged(merchant, owner):
    fresh = IdempotencyRecord.objects.create(
        merchant=merchant,
        key="new",
        method="POST",
        path="/",
        request_fingerprint="x",
        response_status=201,
        response_body={},
    )
    old = IdempotencyRecord.objects.create(
        merchant=merchant,
        key="old",
        method="POST",
        path="/",
        request_fingerprint="x",
        response_status=201,
        response_body={},
    )
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    assert idempotency_records_purge(older_than=timedelta(hours=48)) == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_recalculates_tiers(celery_worker_process):
    with scopes_disabled():
        merchant = MerchantFactory()
        gold = VipTierFactory(merchant=merchant, min_lifetime_points=500)
        customers = CustomerFactory.create_batch(3, merchant=merchant, lifetime_points=800)

    vip_tiers_recalculate_task.delay(merchant_id=merchant.pk)

    def all_gold():
        with scopes_disabled():
            return set(
                Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list("vip_tier_id", flat=True)
            ) == {gold.pk}

    assert wait_for(all_gold)
