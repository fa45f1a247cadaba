"""Celery tasks of RFM analytics: thin, merchant id in, one service call in its scope."""

import logging
import random

from celery import shared_task

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope
from apps.shopify.graphql import ShopifyAuthError, ShopifyError

from . import services
from .shop_metafield import rfm_benchmarks_metafield_write

logger = logging.getLogger(__name__)


def _merchant(merchant_id: str) -> Merchant | None:
    return Merchant.objects.filter(pk=merchant_id, is_installed=True).first()


def _installed_ids() -> list[str]:
    return list(Merchant.objects.filter(is_installed=True).values_list("pk", flat=True))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rfm_scores_refresh_task(*, merchant_id: str, incremental: bool = False) -> str | None:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    with merchant_scope(merchant):
        run = services.rfm_scores_refresh(merchant=merchant, incremental=incremental)
    return run.pk if run is not None else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rfm_nightly_task(*, merchant_id: str) -> dict | None:
    """Full rescoring, a fresh churn model, forecasts for everyone, the nudges, then pruning."""
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    with merchant_scope(merchant):
        run = services.rfm_scores_refresh(merchant=merchant)
        model = services.churn_model_train(merchant=merchant)
        forecasts = services.churn_forecast(merchant=merchant)
        nudged = services.churn_nudges_send(merchant=merchant)
        pruned = services.rfm_history_prune(merchant=merchant)
    return {"run_id": run.pk, "model_id": model.pk, "forecasts": len(forecasts), "nudged": nudged, "pruned": pruned}


@shared_task(acks_late=True)
def rfm_nightly_all_task() -> int:
    ids = _installed_ids()
    for merchant_id in ids:
        rfm_nightly_task.delay(merchant_id=merchant_id)
    return len(ids)


@shared_task(acks_late=True)
def rfm_incremental_all_task() -> int:
    ids = _installed_ids()
    for merchant_id in ids:
        rfm_scores_refresh_task.delay(merchant_id=merchant_id, incremental=True)
    return len(ids)


@shared_task(bind=True, acks_late=True, max_retries=5)
def rfm_benchmarks_metafield_sync_task(self, *, merchant_id: str) -> str | None:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    try:
        return rfm_benchmarks_metafield_write(merchant=merchant)
    except ShopifyAuthError:
        logger.warning("rfm_benchmarks metafield of %s not written: the shop must re-authorise", merchant_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60) * (0.5 + random.random())) from exc  # noqa: S311
