"""RFM reads: thresholds, presets, distributions, transitions, at-risk customers, model cards."""

from django.db import connection
from django.db.models import Count

from apps.core.models import Customer

from .models import (
    GROUP_COLOURS,
    ROLLUP,
    ChurnModel,
    RfmBenchmark,
    RfmExperiment,
    RfmRun,
    RfmSettings,
    Segment,
    SegmentGroup,
)
from .presets import INDUSTRY_CHOICES, industry_of, preset_id, preset_thresholds


def rfm_settings_get(*, merchant) -> RfmSettings:
    """The merchant's RFM settings (the defaults, unsaved, until first changed)."""
    return RfmSettings.objects.filter(merchant=merchant).first() or RfmSettings(merchant=merchant)


def rfm_benchmark_active(*, merchant) -> RfmBenchmark | None:
    return RfmBenchmark.objects.filter(merchant=merchant, is_active=True).first()


def rfm_benchmark_list(*, merchant, limit: int = 20) -> list[RfmBenchmark]:
    return list(RfmBenchmark.objects.filter(merchant=merchant).order_by("-version")[:limit])


def rfm_preset_list() -> list[RfmBenchmark]:
    """The industry presets, in the presets' order (apps/rfm/presets.py is their source; the
    `rfm_benchmarks` rows are its copy, used when present)."""
    rows = {row.industry: row for row in RfmBenchmark.presets.all()}
    return [
        rows.get(slug) or RfmBenchmark(id=preset_id(slug), industry=slug, thresholds=preset_thresholds(slug))
        for slug, _label in INDUSTRY_CHOICES
    ]


def rfm_preset_get(*, industry: str) -> RfmBenchmark | None:
    return RfmBenchmark.presets.filter(pk=preset_id(industry)).first()


def segment_counts(*, merchant) -> dict[str, int]:
    """Customers per standard segment (unscored customers left out)."""
    rows = (
        Customer.objects.filter(merchant=merchant)
        .exclude(rfm_segment="")
        .values("rfm_segment")
        .annotate(n=Count("id"))
        .values_list("rfm_segment", "n")
    )
    return dict(rows)


def segment_distribution(*, merchant, counts: dict | None = None) -> list[dict]:
    """The seeds' five segments with counts and chart colours, in the seeds' order."""
    counts = segment_counts(merchant=merchant) if counts is None else counts
    totals = dict.fromkeys(SegmentGroup, 0)
    for segment, count in counts.items():
        group = ROLLUP.get(segment)
        if group is not None:
            totals[group] += count
    return [
        {
            "key": group.value,
            "label": str(group.label),
            "count": totals[group],
            "colour": GROUP_COLOURS[group][0],
            "border": GROUP_COLOURS[group][1],
        }
        for group in SegmentGroup
    ]


def segment_detail(*, merchant, counts: dict | None = None) -> list[dict]:
    """The 11 standard segments with counts and the group each rolls up to."""
    counts = segment_counts(merchant=merchant) if counts is None else counts
    return [
        {"key": s.value, "label": str(s.label), "group": str(ROLLUP[s].label), "count": counts.get(s.value, 0)}
        for s in Segment
    ]


def rfm_run_list(*, merchant, limit: int = 30, kind: str | None = None) -> list[RfmRun]:
    runs = RfmRun.objects.filter(merchant=merchant, finished_at__isnull=False)
    if kind:
        runs = runs.filter(kind=kind)
    return list(runs.order_by("-started_at")[:limit])


def score_trends(*, merchant, limit: int = 30) -> list[dict]:
    """Per full run (oldest first): customers per group — the line chart's data."""
    trends = []
    for run in reversed(rfm_run_list(merchant=merchant, limit=limit, kind=RfmRun.Kind.FULL)):
        trends.append(
            {
                "run_id": run.pk,
                "date": run.started_at,
                "groups": {
                    d["key"]: d["count"] for d in segment_distribution(merchant=merchant, counts=run.segment_counts)
                },
            }
        )
    return trends


def segment_transitions(*, merchant, from_run_id: str, to_run_id: str) -> list[dict]:
    """Who moved where between two runs: (from, to, customers) for every changed pair."""
    sql = """
        SELECT a.segment, b.segment, COUNT(*)
        FROM rfm_score_history a
        JOIN rfm_score_history b ON b.customer_id = a.customer_id AND b.merchant_id = a.merchant_id
        WHERE a.merchant_id = %s AND a.run_id = %s AND b.merchant_id = %s AND b.run_id = %s
          AND a.segment <> b.segment
        GROUP BY a.segment, b.segment
        ORDER BY COUNT(*) DESC, a.segment, b.segment"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant.pk, from_run_id, merchant.pk, to_run_id])
        rows = cursor.fetchall()
    labels = {s.value: str(s.label) for s in Segment}
    return [
        {"from": a, "to": b, "from_label": labels.get(a, a), "to_label": labels.get(b, b), "customers": n}
        for a, b, n in rows
    ]


def segment_transition_customers(*, merchant, from_run_id: str, to_run_id: str, limit: int = 100) -> list[dict]:
    """The customers who changed segment between two runs (ids only, no personal data)."""
    sql = """
        SELECT a.customer_id, a.segment, b.segment
        FROM rfm_score_history a
        JOIN rfm_score_history b ON b.customer_id = a.customer_id AND b.merchant_id = a.merchant_id
        WHERE a.merchant_id = %s AND a.run_id = %s AND b.merchant_id = %s AND b.run_id = %s
          AND a.segment <> b.segment
        ORDER BY a.customer_id LIMIT %s"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant.pk, from_run_id, merchant.pk, to_run_id, limit])
        return [{"customer_id": c, "from": a, "to": b} for c, a, b in cursor.fetchall()]


def latest_transitions(*, merchant) -> tuple[RfmRun | None, RfmRun | None, list[dict]]:
    runs = rfm_run_list(merchant=merchant, limit=2, kind=RfmRun.Kind.FULL)
    if len(runs) < 2:
        return None, None, []
    newer, older = runs
    return older, newer, segment_transitions(merchant=merchant, from_run_id=older.pk, to_run_id=newer.pk)


def churn_model_active(*, merchant) -> ChurnModel | None:
    return ChurnModel.objects.filter(merchant=merchant, is_active=True).order_by("-trained_at").first()


def at_risk_customers(*, merchant, threshold: float | None = None, limit: int = 50) -> list[Customer]:
    """Customers whose churn score is at or above the merchant's nudge threshold, riskiest first."""
    if threshold is None:
        threshold = rfm_settings_get(merchant=merchant).nudge_threshold
    return list(
        Customer.objects.filter(merchant=merchant, churn_score__gte=threshold, redacted_at__isnull=True)
        .exclude(lifecycle_stage="churned")
        .order_by("-churn_score", "id")[:limit]
    )


def industry_position(*, merchant) -> list[dict]:
    """The merchant's level-5 bars next to its industry preset's (where it sits)."""
    from .thresholds import DIMENSION_LABELS, thresholds_display

    active = rfm_benchmark_active(merchant=merchant)
    industry = active.industry if active else industry_of(merchant)
    preset = rfm_preset_get(industry=industry)
    # The presets' source of truth is apps/rfm/presets.py; the rows are its copy for SQL readers.
    preset_bars = preset.thresholds if preset else preset_thresholds(industry)
    mine = thresholds_display(active.thresholds if active else preset_bars)
    theirs = thresholds_display(preset_bars)
    return [
        {
            "dimension": dimension,
            "label": DIMENSION_LABELS[dimension],
            "merchant": mine[dimension]["5"],
            "industry": theirs[dimension]["5"],
        }
        for dimension in ("recency", "frequency", "monetary")
    ]


def churn_model_card(model: ChurnModel) -> dict:
    """The model card as shown and served: what was trained, on what, and how well it did."""
    lift = None
    if model.accuracy is not None and model.baseline_accuracy is not None:
        lift = round(model.accuracy - model.baseline_accuracy, 4)
    return {
        "model_id": model.pk,
        "algorithm": model.algorithm,
        "algorithm_label": str(model.get_algorithm_display()),
        "trained_at": model.trained_at,
        "cutoff_at": model.cutoff_at,
        "horizon_days": model.horizon_days,
        "customers": model.customers,
        "validation_customers": model.validation_customers,
        "auc": model.auc,
        "accuracy": model.accuracy,
        "baseline_accuracy": model.baseline_accuracy,
        "accuracy_over_baseline": lift,
        "churn_rate": model.churn_rate,
        "candidates": model.candidates,
        "fallback": model.algorithm in (ChurnModel.Algorithm.RECENCY_RULE, ChurnModel.Algorithm.POOLED_INDUSTRY),
        "note": model.note,
    }


def rfm_experiment_list(*, merchant, limit: int = 20) -> list[RfmExperiment]:
    return list(RfmExperiment.objects.filter(merchant=merchant).order_by("-started_at")[:limit])


def rfm_experiment_get(*, merchant, experiment_id: str) -> RfmExperiment | None:
    return RfmExperiment.objects.filter(merchant=merchant, pk=experiment_id).first()


def lifecycle_forecast(*, merchant) -> list[dict]:
    """Per lifecycle stage now: customers, and the expected numbers at the horizon — churned
    (the sum of churn scores) and, for one-order new leads, becoming repeat buyers (the sum of
    the probabilities that they buy again)."""
    from django.db.models import Case, F, FloatField, Q, Sum, Value, When

    from apps.core.models import LifecycleStage

    rows = (
        Customer.objects.filter(merchant=merchant, churn_score__isnull=False, redacted_at__isnull=True)
        .values("lifecycle_stage")
        .annotate(
            customers=Count("id"),
            expected_churned=Sum("churn_score"),
            expected_repeat=Sum(
                Case(
                    When(
                        Q(lifecycle_stage=LifecycleStage.NEW_LEAD, orders_count=1),
                        then=Value(1.0) - F("churn_score"),
                    ),
                    default=Value(0.0),
                    output_field=FloatField(),
                )
            ),
        )
    )
    found = {row["lifecycle_stage"]: row for row in rows}
    return [
        {
            "stage": stage.value,
            "label": str(stage.label),
            "customers": found.get(stage.value, {}).get("customers", 0),
            "expected_churned": round(found.get(stage.value, {}).get("expected_churned") or 0),
            "expected_repeat": round(found.get(stage.value, {}).get("expected_repeat") or 0),
        }
        for stage in LifecycleStage
    ]


def store_group(*, merchant) -> list:
    """The merchant and the installed stores of its group: those it lists in
    `multi_store_config.shared_stores` that list it back (a one-sided claim shows nothing)."""
    from apps.core.models import Merchant, ProgramSettings
    from apps.core.tenancy import scopes_disabled

    def listed(config) -> set[str]:
        stores = (config or {}).get("shared_stores") or []
        return {s for s in stores if isinstance(s, str)}

    with scopes_disabled():
        mine = ProgramSettings.objects.filter(merchant=merchant).values_list("multi_store_config", flat=True).first()
        domains = listed(mine) - {merchant.shop_domain}
        if not domains:
            return [merchant]
        others = Merchant.objects.filter(shop_domain__in=domains, is_installed=True)
        configs = dict(
            ProgramSettings.objects.filter(merchant__in=others).values_list("merchant_id", "multi_store_config")
        )
        mutual = [m for m in others if merchant.shop_domain in listed(configs.get(m.pk))]
    return [merchant, *sorted(mutual, key=lambda m: m.shop_domain)]


def cross_store_comparison(*, merchant) -> list[dict]:
    """Segment distribution per store of the merchant's group, side by side (counts only)."""
    from apps.core.tenancy import merchant_scope

    rows = []
    for store in store_group(merchant=merchant):
        with merchant_scope(store):
            counts = segment_counts(merchant=store)
            rows.append(
                {
                    "shop_domain": store.shop_domain,
                    "name": store.name,
                    "scored": sum(counts.values()),
                    "distribution": segment_distribution(merchant=store, counts=counts),
                }
            )
    return rows
