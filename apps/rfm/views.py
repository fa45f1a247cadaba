"""The RFM page of the embedded admin: wizard, segment distribution, score trends, model card,
at-risk customers and transitions. Server-rendered; charts are an enhancement over tables."""

from django.shortcuts import render
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.tenancy import merchant_scope
from apps.shopify.views import _base_context, _carried_query, _denied, embedded_page, feature_navigation

from . import scoring, selectors, services
from .models import Segment
from .presets import INDUSTRIES, INDUSTRY_CHOICES, LEVELS, preset_thresholds
from .thresholds import DIMENSION_LABELS, DIMENSIONS, thresholds_display, thresholds_parse

SCOPE = "admin:analytics"


def _wizard(request, merchant, active) -> dict:
    """The wizard's state from the query string: industry, the bars shown, and their preview."""
    industry = request.GET.get("industry") or (active.industry if active else merchant.industry)
    if industry not in INDUSTRIES:
        industry = "other"
    base = active.thresholds if active and active.industry == industry else preset_thresholds(industry)
    submitted = {
        dimension: {
            level: request.GET[f"{dimension}_{level}"] for level in LEVELS if request.GET.get(f"{dimension}_{level}")
        }
        for dimension in DIMENSIONS
    }
    raw = {dimension: levels for dimension, levels in submitted.items() if levels}
    if request.GET.get("method") in ("thresholds", "quintiles"):
        raw["method"] = request.GET["method"]
    error_fields = {}
    try:
        parsed = thresholds_parse(raw, base=base)
    except ApplicationError as exc:
        parsed, error_fields = base, exc.details or {}
    shown = thresholds_display(parsed)
    preview = None
    if request.GET.get("preview") and not error_fields:
        counts = scoring.preview_counts(
            merchant_id=merchant.pk,
            thresholds=parsed,
            now=timezone.now(),
            horizon_days=selectors.rfm_settings_get(merchant=merchant).horizon_days,
        )
        preview = selectors.segment_distribution(merchant=merchant, counts=counts)
    rows = [
        {
            "dimension": dimension,
            "label": DIMENSION_LABELS[dimension],
            "levels": [
                {
                    "level": level,
                    "name": f"{dimension}_{level}",
                    "value": submitted[dimension].get(level, shown[dimension][level]),
                    "errors": error_fields.get(f"thresholds.{dimension}.{level}", []),
                }
                for level in LEVELS
            ],
            "errors": error_fields.get(f"thresholds.{dimension}", []),
        }
        for dimension in DIMENSIONS
    ]
    return {
        "industry": industry,
        "industries": INDUSTRY_CHOICES,
        "method": parsed.get("method", "thresholds"),
        "rows": rows,
        "errors": [str(m) for messages in error_fields.values() for m in messages],
        "preview": preview,
        "thresholds_json": shown,
    }


@embedded_page
def rfm_page(request, session):
    merchant = session.merchant
    with merchant_scope(merchant):
        if not session.has_scope(SCOPE):
            return _denied(request, 403, session.locale)
        active = selectors.rfm_benchmark_active(merchant=merchant)
        counts = selectors.segment_counts(merchant=merchant)
        model = selectors.churn_model_active(merchant=merchant)
        older, newer, transitions = selectors.latest_transitions(merchant=merchant)
        context = {
            **_base_context(session.locale),
            "merchant": merchant,
            "features": feature_navigation(),
            "query": _carried_query(request),
            "active": active,
            "active_thresholds": thresholds_display(active.thresholds) if active else None,
            "position": selectors.industry_position(merchant=merchant),
            "distribution": selectors.segment_distribution(merchant=merchant, counts=counts),
            "segments": selectors.segment_detail(merchant=merchant, counts=counts),
            "trends": selectors.score_trends(merchant=merchant),
            "card": selectors.churn_model_card(model) if model else None,
            "lifecycle": selectors.lifecycle_forecast(merchant=merchant),
            "stores": selectors.cross_store_comparison(merchant=merchant),
            "experiments": [
                {"experiment": e, "results": services.rfm_experiment_results(merchant=merchant, experiment=e)}
                for e in selectors.rfm_experiment_list(merchant=merchant, limit=5)
            ],
            "at_risk": selectors.at_risk_customers(merchant=merchant, limit=25),
            "segment_labels": {s.value: s.label for s in Segment},
            "settings": selectors.rfm_settings_get(merchant=merchant),
            "transitions": transitions,
            "transition_runs": (older, newer),
            "wizard": _wizard(request, merchant, active),
            "groups": [d["label"] for d in selectors.segment_distribution(merchant=merchant, counts={})],
        }
    return render(request, "rfm/page.html", context)
