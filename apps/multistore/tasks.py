"""Celery tasks of the multi-store feature: ids as keyword arguments, one service each."""

from celery import shared_task

from apps.core.tenancy import scopes_disabled

from . import services
from .models import StoreGroup, StoreGroupMember

PAGE = 500


class LinkIncomplete(Exception):
    """Some emails failed to link (each logged); the retry links only what is still unlinked."""


@shared_task(bind=True, acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def shared_customers_link_task(self, *, group_id: str, **kwargs):
    group = StoreGroup.objects.get(pk=group_id)
    report = services.shared_customers_link(group=group)
    if report.linked or not self.request.retries:
        group_sync_task.delay(group_id=group_id)
    if report.failed:
        raise LinkIncomplete(f"{report.failed} emails of group {group_id} not linked")
    return report.__dict__


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def shared_copies_sync_task(*, merchant_id: str, customer_ids: list[str], **kwargs):
    with scopes_disabled():
        store = services.Merchant.objects.get(pk=merchant_id)
    return services._copy_sync(store, customer_ids)


@shared_task(acks_late=True)
def group_sync_task(*, group_id: str, **kwargs):
    """Bulk sync of a whole group: one page task per member store, each chaining the next page."""
    for merchant_id in StoreGroupMember.across_stores.filter(group_id=group_id).values_list("merchant_id", flat=True):
        group_copies_page_task.delay(group_id=group_id, merchant_id=merchant_id, after="")


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def group_copies_page_task(*, group_id: str, merchant_id: str, after: str = "", **kwargs):
    # acks_late + idempotent copies: a worker killed mid-page redoes the page; the sweep
    # (reconciliation) repairs anything a lost task left behind.
    synced, last = services.group_copies_sync(group_id=group_id, merchant_id=merchant_id, after=after, limit=PAGE)
    if synced == PAGE:
        group_copies_page_task.delay(group_id=group_id, merchant_id=merchant_id, after=last)
    return synced


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def group_reconcile_task(*, group_id: str, **kwargs):
    return services.group_reconcile(group_id=group_id)


@shared_task
def group_reconcile_all_task(**kwargs):
    for group_id in StoreGroup.objects.values_list("pk", flat=True):
        group_reconcile_task.delay(group_id=group_id)
