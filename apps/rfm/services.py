"""RFM writes: thresholds (versioned), scoring runs, churn models and forecasts, nudges."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.models import Customer, Merchant
from apps.core.streams import stream_append_on_commit
from apps.core.tracking import track_on_commit

from . import scoring
from .churn import (
    churn_forecast,
    churn_model_train,
    churn_nudges_send,
)
from .experiments import (
    rfm_experiment_results,
    rfm_experiment_start,
    rfm_experiment_stop,
)
from .models import ROLLUP, RfmBenchmark, RfmRun, RfmScoreHistory, RfmSettings
from .presets import INDUSTRY_CHOICES, industry_of, preset_thresholds
from .selectors import rfm_benchmark_active, rfm_settings_get
from .thresholds import InvalidThresholds, thresholds_display, thresholds_parse

logger = logging.getLogger(__name__)


def industry_normalize(value: str) -> str:
    """`"Pet Store"`, `"pet store"` or `"pet_store"` → `"pet_store"`; raises InvalidThresholds."""
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for slug, label in INDUSTRY_CHOICES:
            with translation.override("en"):
                english = str(label).casefold()
            if wanted in (slug, slug.replace("_", " "), english, str(label).casefold()):
                return slug
    raise InvalidThresholds(details={"industry": [_("Unknown industry. Choose one of the presets.")]})


def _base_thresholds(merchant, industry: str) -> dict:
    current = rfm_benchmark_active(merchant=merchant)
    if current is not None and current.industry == industry:
        return current.thresholds
    return preset_thresholds(industry)


@transaction.atomic
def rfm_thresholds_update(*, merchant, actor=None, industry: str, thresholds: dict, locale: str = "en") -> RfmBenchmark:
    """Validate and store a new version of the merchant's thresholds; audit, stream, track,
    queue the shop metafield write and a rescoring run."""
    industry = industry_normalize(industry)
    parsed = thresholds_parse(thresholds, base=_base_thresholds(merchant, industry))
    # Serialise concurrent updates of one merchant on its row, so versions never collide.
    Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
    versions = RfmBenchmark.objects.filter(merchant=merchant)
    latest = versions.aggregate(latest=Max("version"))["latest"] or 0
    versions.filter(is_active=True).update(is_active=False)
    benchmark = RfmBenchmark.objects.create(
        merchant=merchant,
        industry=industry,
        thresholds=parsed,
        version=latest + 1,
        is_active=True,
        actor=actor if getattr(actor, "merchant_id", None) == merchant.pk else None,
    )
    shown = thresholds_display(parsed)
    audit_record(
        merchant=merchant,
        actor=actor,
        action="rfm_threshold_updated",
        target=benchmark,
        metadata={
            "industry": industry,
            "version": benchmark.version,
            "method": parsed["method"],
            "threshold": "recency{},frequency{},monetary{}".format(*(shown[d]["5"] for d in shown)),
            "thresholds": shown,
        },
    )
    stream_append_on_commit(
        merchant_id=merchant.pk,
        key=f"rfm_benchmarks:{merchant.pk}",
        data=rfm_benchmark_state(benchmark),
    )
    track_on_commit(
        "rfm_threshold_updated",
        merchant=merchant,
        distinct_id=getattr(actor, "pk", None) or merchant.pk,
        properties={"industry": industry, "version": benchmark.version, "method": parsed["method"]},
    )
    merchant_id = merchant.pk
    transaction.on_commit(lambda: _enqueue_after_thresholds(merchant_id))
    return benchmark


def _enqueue_after_thresholds(merchant_id: str) -> None:
    from .tasks import rfm_benchmarks_metafield_sync_task, rfm_scores_refresh_task

    try:
        rfm_benchmarks_metafield_sync_task.delay(merchant_id=merchant_id)
        rfm_scores_refresh_task.delay(merchant_id=merchant_id)
    except Exception:  # the broker being down must not fail a saved change; the nightly run catches up
        logger.warning("queueing after a threshold update failed", exc_info=True)


def rfm_benchmark_state(benchmark: RfmBenchmark) -> dict:
    """What the stream and the shop metafield carry: the seeds' shape plus every level."""
    shown = thresholds_display(benchmark.thresholds)
    return {
        "benchmark_id": benchmark.pk,
        "industry": benchmark.industry,
        "segment_name": benchmark.segment_name,
        "version": benchmark.version,
        "method": benchmark.thresholds.get("method", "thresholds"),
        "thresholds": {dimension: levels["5"] for dimension, levels in shown.items()},
        "levels": shown,
        "weights": benchmark.thresholds.get("weights"),
    }


def _effective_thresholds(merchant, benchmark: RfmBenchmark | None, now: datetime, *, full: bool) -> dict:
    thresholds = benchmark.thresholds if benchmark is not None else preset_thresholds(industry_of(merchant))
    if thresholds.get("method") != "quintiles":
        return thresholds
    if full:
        return scoring.quintile_bars(merchant_id=merchant.pk, now=now, base=thresholds)
    last_full = RfmRun.objects.filter(merchant=merchant, kind=RfmRun.Kind.FULL).order_by("-started_at").first()
    return last_full.effective_thresholds if last_full and last_full.effective_thresholds else thresholds


@transaction.atomic
def rfm_scores_refresh(*, merchant, incremental: bool = False, now: datetime | None = None) -> RfmRun | None:
    """Score the merchant's customers set-wise: all of them, or (incremental) those whose row
    changed since the last run started (new orders, refunds, late orders). Writes one history row per scored customer. An incremental run
    with nobody to rescore writes nothing and returns None (it runs every few minutes)."""
    now = now or timezone.now()
    settings_row = rfm_settings_get(merchant=merchant)
    benchmark = rfm_benchmark_active(merchant=merchant)
    since = None
    if incremental:
        previous = RfmRun.objects.filter(merchant=merchant).order_by("-started_at").first()
        if previous is None:
            incremental = False
        else:
            since = previous.started_at
            touched = Q(last_order_at__gte=since) | Q(updated_at__gt=since)
            if not Customer.objects.filter(touched, merchant=merchant, orders_count__gt=0).exists():
                return None
    effective = _effective_thresholds(merchant, benchmark, now, full=not incremental)
    run = RfmRun.objects.create(
        merchant=merchant,
        benchmark=benchmark,
        kind=RfmRun.Kind.INCREMENTAL if incremental else RfmRun.Kind.FULL,
        effective_thresholds=effective,
        started_at=now,
    )
    scored = scoring.score_into_history(
        merchant_id=merchant.pk,
        run_id=run.pk,
        thresholds=benchmark.thresholds if (benchmark and not incremental) else effective,
        now=now,
        horizon_days=settings_row.horizon_days,
        since=since,
    )
    changed = scoring.apply_history_to_customers(merchant_id=merchant.pk, run_id=run.pk, now=now, full=not incremental)
    counts = dict(
        Customer.objects.filter(merchant=merchant)
        .exclude(rfm_segment="")
        .values_list("rfm_segment")
        .annotate(n=Count("id"))
        .values_list("rfm_segment", "n")
    )
    run.customers_scored = scored
    run.segment_counts = counts
    run.finished_at = timezone.now()
    run.save(update_fields=["customers_scored", "segment_counts", "finished_at"])
    groups: dict[str, int] = {}
    for segment, count in counts.items():
        group = ROLLUP.get(segment)
        if group is not None:
            groups[group.value] = groups.get(group.value, 0) + count
    audit_record(
        merchant=merchant,
        action="rfm_scored",
        target=run,
        metadata={"kind": run.kind, "customers_scored": scored, "customers_changed": changed},
    )
    stream_append_on_commit(
        merchant_id=merchant.pk,
        key=f"analytics:{merchant.pk}",
        data={"run_id": run.pk, "kind": run.kind, "segments": groups, "scored_at": now.isoformat()},
    )
    return run


@transaction.atomic
def rfm_history_prune(*, merchant, now: datetime | None = None) -> int:
    """Delete the merchant's scoring runs (and their history rows) older than the retention;
    the latest full run is always kept, so transitions and trends have a base."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RFM_HISTORY_RETENTION_DAYS)
    keep = RfmRun.objects.filter(merchant=merchant, kind=RfmRun.Kind.FULL).order_by("-started_at").first()
    old = RfmRun.objects.filter(merchant=merchant, started_at__lt=cutoff)
    if keep is not None:
        old = old.exclude(pk=keep.pk)
    run_ids = list(old.values_list("pk", flat=True))
    if not run_ids:
        return 0
    deleted, _counts = RfmScoreHistory.objects.filter(merchant=merchant, run_id__in=run_ids).delete()
    RfmRun.objects.filter(merchant=merchant, pk__in=run_ids).delete()
    return deleted


@transaction.atomic
def rfm_settings_update(*, merchant, actor=None, **changes) -> RfmSettings:
    """Change the churn horizon, model choice or nudge policy."""
    row = rfm_settings_get(merchant=merchant)
    for field, value in changes.items():
        setattr(row, field, value)
    row.full_clean(exclude=["merchant"])
    row.save()
    audit_record(merchant=merchant, actor=actor, action="rfm_settings_updated", metadata=changes)
    return row


__all__ = [
    "churn_forecast",
    "churn_model_train",
    "churn_nudges_send",
    "industry_normalize",
    "rfm_benchmark_state",
    "rfm_experiment_results",
    "rfm_experiment_start",
    "rfm_experiment_stop",
    "rfm_history_prune",
    "rfm_scores_refresh",
    "rfm_settings_update",
    "rfm_thresholds_update",
]
