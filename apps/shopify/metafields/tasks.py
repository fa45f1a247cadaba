"""Celery tasks of the metafield sync: thin, ids in, one service call. Names are kept stable
(`apps.shopify.metafields.<task>`) for the beat schedule and queued messages."""

import logging
import random

from celery import shared_task

from apps.core.models import Merchant
from apps.core.tenancy import scopes_disabled

from ..graphql import ShopifyAuthError, ShopifyError
from ..models import ShopifyInstallation
from .legacy import legacy_namespace_retire
from .sync import customer_metafields_sweep, customer_metafields_sync, shop_config_sync

TASK_PREFIX = "apps.shopify.metafields"

logger = logging.getLogger(__name__)

# --- Celery tasks (thin: ids in, one service call) -------------------------------------------------


def _merchant(merchant_id: str) -> Merchant | None:
    return Merchant.objects.filter(pk=merchant_id, is_installed=True).first()


def _for_shop(task, merchant_id: str, what: str, work):
    """`work(merchant)` for an installed shop; None when the shop is gone or must re-authorise.
    Retryable Shopify errors retry the task with jittered exponential backoff."""
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    try:
        return work(merchant)
    except ShopifyAuthError:
        logger.warning("%s of %s stopped: the shop must re-authorise", what, merchant_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise task.retry(exc=exc, countdown=_retry_delay(task.request.retries)) from exc


@shared_task(name=f"{TASK_PREFIX}.customer_metafields_sync_task", bind=True, acks_late=True, max_retries=5)
def customer_metafields_sync_task(self, *, merchant_id: str, customer_ids: list[str]) -> dict | None:
    return _for_shop(
        self,
        merchant_id,
        "metafield sync",
        lambda merchant: customer_metafields_sync(merchant=merchant, customers=customer_ids).as_dict(),
    )


@shared_task(name=f"{TASK_PREFIX}.customer_metafields_sweep_task", bind=True, acks_late=True, max_retries=3)
def customer_metafields_sweep_task(self, *, merchant_id: str, verify_shopify: bool = False) -> dict | None:
    def sweep(merchant):
        report = customer_metafields_sweep(merchant=merchant, verify_shopify=verify_shopify)
        if verify_shopify:
            shop_config_sync(merchant=merchant)
        return report.as_dict()

    return _for_shop(self, merchant_id, "metafield sweep", sweep)


@shared_task(name=f"{TASK_PREFIX}.shop_config_sync_task", bind=True, acks_late=True, max_retries=5)
def shop_config_sync_task(self, *, merchant_id: str) -> None:
    _for_shop(self, merchant_id, "shop config sync", lambda merchant: shop_config_sync(merchant=merchant))


@shared_task(name=f"{TASK_PREFIX}.legacy_namespace_retire_task", bind=True, acks_late=True, max_retries=5)
def legacy_namespace_retire_task(self, *, merchant_id: str) -> dict | None:
    """Issue 9, once per shop: fill `$app:loyalnest`, delete the public `loyalnest` copies."""
    return _for_shop(
        self, merchant_id, "retiring the public metafields", lambda merchant: legacy_namespace_retire(merchant=merchant)
    )


@shared_task(name=f"{TASK_PREFIX}.customer_metafields_sweep_all_task", acks_late=True)
def customer_metafields_sweep_all_task(*, verify_shopify: bool = False) -> int:
    """Beat: one sweep task per installed shop with usable tokens."""
    with scopes_disabled():
        merchant_ids = list(
            ShopifyInstallation.objects.filter(merchant__is_installed=True, needs_reauth=False).values_list(
                "merchant_id", flat=True
            )
        )
    for merchant_id in merchant_ids:
        customer_metafields_sweep_task.delay(merchant_id=merchant_id, verify_shopify=verify_shopify)
    return len(merchant_ids)


def _retry_delay(retries: int) -> float:
    return min(600, 10 * 2**retries) * random.uniform(0.5, 1.0)  # noqa: S311  (jitter)
