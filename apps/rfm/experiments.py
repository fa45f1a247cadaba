"""Threshold A/B tests.

An experiment holds two threshold sets (A: the merchant's thresholds when it started, B: the
challenger) and a split. Every customer is assigned deterministically: the first 8 hex digits
of sha256("<experiment id>:<customer id>") modulo 100, below the split → B. While it runs, the
churn-risk nudge run also nudges the customers its variant's thresholds put in the At-Risk
group (at most one nudge per customer per window, as always). The outcome is a repeat
purchase within `outcome_days` after the nudge; results compare the two conversion rates with
a two-proportion z-test and a 95% confidence interval of the difference.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import ApplicationError
from apps.core.models import Customer
from apps.core.tracking import track_on_commit

from .models import ROLLUP, ChurnNudge, RfmExperiment, SegmentGroup
from .presets import industry_of, preset_thresholds
from .scoring import _ts, segmented_query
from .selectors import rfm_benchmark_active, rfm_settings_get
from .thresholds import thresholds_parse

MIN_SAMPLE_PER_VARIANT = 100
AT_RISK_SEGMENTS = tuple(segment.value for segment, group in ROLLUP.items() if group == SegmentGroup.AT_RISK)


class ExperimentAlreadyRunning(ApplicationError):
    code = "experiment_running"
    status = 409
    default_message = _("Another threshold experiment is running. Stop it first.")


def variant_for(experiment_id: str, customer_id: str, split_percent: int) -> str:
    """'A' or 'B', the same every time for the same experiment and customer."""
    digest = hashlib.sha256(f"{experiment_id}:{customer_id}".encode()).hexdigest()
    return "B" if int(digest[:8], 16) % 100 < split_percent else "A"


@transaction.atomic
def rfm_experiment_start(
    *, merchant, actor=None, name: str, thresholds_b: dict, split_percent: int = 50, outcome_days: int = 30
) -> RfmExperiment:
    """Start an A/B test of the current thresholds (A) against `thresholds_b` (validated)."""
    if (
        RfmExperiment.objects.select_for_update()
        .filter(merchant=merchant, status=RfmExperiment.Status.RUNNING)
        .exists()
    ):
        raise ExperimentAlreadyRunning()
    active = rfm_benchmark_active(merchant=merchant)
    thresholds_a = active.thresholds if active else preset_thresholds(industry_of(merchant))
    experiment = RfmExperiment.objects.create(
        merchant=merchant,
        name=name,
        thresholds_a=thresholds_a,
        thresholds_b=thresholds_parse(thresholds_b, base=thresholds_a),
        split_percent=split_percent,
        outcome_days=outcome_days,
    )
    audit_record(
        merchant=merchant,
        actor=actor,
        action="rfm_experiment_started",
        target=experiment,
        metadata={"split_percent": split_percent, "outcome_days": outcome_days},
    )
    track_on_commit("rfm_experiment_started", merchant=merchant, distinct_id=getattr(actor, "pk", None) or merchant.pk)
    return experiment


@transaction.atomic
def rfm_experiment_stop(*, merchant, experiment: RfmExperiment, actor=None) -> RfmExperiment:
    experiment.status = RfmExperiment.Status.STOPPED
    experiment.stopped_at = timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])
    audit_record(merchant=merchant, actor=actor, action="rfm_experiment_stopped", target=experiment)
    return experiment


def at_risk_under(*, merchant, thresholds: dict, now: datetime, horizon_days: int) -> list[str]:
    """Customer ids the thresholds put in the At-Risk group (set-based, nothing written)."""
    query = segmented_query(merchant_id=merchant.pk, thresholds=thresholds, now=now, horizon_days=horizon_days)
    marks = ", ".join(["%s"] * len(AT_RISK_SEGMENTS))
    sql = f"SELECT id FROM ({query.sql}) t WHERE segment IN ({marks}) ORDER BY id"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*query.params, *AT_RISK_SEGMENTS])
        return [row[0] for row in cursor.fetchall()]


def experiment_candidates(*, merchant, experiment: RfmExperiment, now: datetime) -> dict[str, list[str]]:
    """Per variant, the customers in that variant whom its thresholds put At-Risk."""
    horizon = rfm_settings_get(merchant=merchant).horizon_days
    chosen = {}
    for variant, thresholds in (("A", experiment.thresholds_a), ("B", experiment.thresholds_b)):
        ids = at_risk_under(merchant=merchant, thresholds=thresholds, now=now, horizon_days=horizon)
        chosen[variant] = [cid for cid in ids if variant_for(experiment.pk, cid, experiment.split_percent) == variant]
    return chosen


@dataclass
class VariantResult:
    variant: str
    nudged: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.nudged if self.nudged else None


def two_proportion_test(a: VariantResult, b: VariantResult) -> dict:
    """Lift (B − A), its 95% confidence interval, the pooled z statistic and two-sided p-value."""
    if not a.nudged or not b.nudged:
        return {"lift": None, "ci_low": None, "ci_high": None, "z": None, "p_value": None, "significant": False}
    pa, pb = a.rate, b.rate
    lift = pb - pa
    se_diff = math.sqrt(pa * (1 - pa) / a.nudged + pb * (1 - pb) / b.nudged)
    pooled = (a.converted + b.converted) / (a.nudged + b.nudged)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / a.nudged + 1 / b.nudged))
    z = lift / se_pooled if se_pooled > 0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return {
        "lift": round(lift, 4),
        "ci_low": round(lift - 1.96 * se_diff, 4),
        "ci_high": round(lift + 1.96 * se_diff, 4),
        "z": round(z, 4),
        "p_value": round(p_value, 4),
        "significant": p_value < 0.05,
    }


def rfm_experiment_results(*, merchant, experiment: RfmExperiment, now: datetime | None = None) -> dict:
    """Conversions (an order within `outcome_days` after the nudge) per variant, and the test."""
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        until = "n.created_at + (%s * interval '1 day')"
    else:
        until = "datetime(n.created_at, '+' || %s || ' days')"
    sql = f"""
        SELECT n.variant, COUNT(*), SUM(CASE WHEN EXISTS (
            SELECT 1 FROM orders o
            WHERE o.merchant_id = n.merchant_id AND o.customer_id = n.customer_id AND o.cancelled_at IS NULL
              AND o.processed_at > n.created_at AND o.processed_at <= {until} AND o.processed_at <= %s
        ) THEN 1 ELSE 0 END)
        FROM rfm_churn_nudges n
        WHERE n.merchant_id = %s AND n.experiment_id = %s
        GROUP BY n.variant"""  # noqa: S608  (fixed SQL fragments; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [experiment.outcome_days, _ts(now), merchant.pk, experiment.pk])
        counts = {variant: (int(n), int(c or 0)) for variant, n, c in cursor.fetchall()}
    results = {v: VariantResult(v, *counts.get(v, (0, 0))) for v in ("A", "B")}
    test = two_proportion_test(results["A"], results["B"])
    return {
        "experiment_id": experiment.pk,
        "variants": [
            {"variant": r.variant, "nudged": r.nudged, "converted": r.converted, "rate": r.rate}
            for r in results.values()
        ],
        **test,
        "minimum_sample_warning": min(r.nudged for r in results.values()) < MIN_SAMPLE_PER_VARIANT,
    }


def nudge_experiment_customers(*, merchant, experiment: RfmExperiment, now: datetime, window: int) -> list[tuple]:
    """(customer, variant) pairs to nudge for the experiment, skipping anyone nudged this window."""
    chosen = experiment_candidates(merchant=merchant, experiment=experiment, now=now)
    recently = set(ChurnNudge.objects.filter(merchant=merchant, window=window).values_list("customer_id", flat=True))
    pairs = []
    for variant, ids in chosen.items():
        wanted = [cid for cid in ids if cid not in recently]
        for customer in Customer.objects.filter(merchant=merchant, pk__in=wanted, redacted_at__isnull=True):
            pairs.append((customer, variant))
    return pairs
