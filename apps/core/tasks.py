"""Celery tasks of the core: thin, ids in, one service call each (B3: re-enter the scope)."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from apps.core.models import Merchant
from apps.core.services.maintenance import idempotency_records_purge, vip_tiers_recalculate
from apps.core.tenancy import merchant_scope


@shared_task(acks_late=True)
def vip_tiers_recalculate_task(*, merchant_id: str) -> int:
    merchant = Merchant.objects.get(pk=merchant_id)
    with merchant_scope(merchant):
        return vip_tiers_recalculate(merchant=merchant)


@shared_task(acks_late=True)
def idempotency_records_purge_task() -> int:
    return idempotency_records_purge(older_than=timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS))
