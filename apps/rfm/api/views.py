"""Merchant API of RFM analytics (scope `admin:analytics`): thresholds, preview, forecast,
rescoring, segments, transitions and the model card."""

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core import errors
from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer
from apps.core.models import Customer

from .. import scoring, selectors, services
from ..models import RfmRun, RfmSettings
from ..presets import preset_thresholds
from ..thresholds import thresholds_display, thresholds_parse

SCOPE = "admin:analytics"


class MerchantIdField(serializers.CharField):
    """The seeds' `merchant_id` input: accepted for compatibility, never trusted — it must be the
    caller's own shop (the merchant always comes from the session token)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)


def _check_merchant_id(request, data) -> None:
    given = data.pop("merchant_id", None)
    if given is not None and given != request.merchant.pk:
        raise errors.NotFound(_("Merchant not found."))


class ThresholdsInput(StrictSerializer):
    merchant_id = MerchantIdField()
    industry = serializers.CharField(max_length=64)
    thresholds = serializers.JSONField()
    locale = LocaleField()


class RfmThresholdsApi(MerchantApiView):
    """Read or update the merchant's RFM thresholds (versioned, audited, streamed)."""

    required_scope = SCOPE

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        active = selectors.rfm_benchmark_active(merchant=request.merchant)
        presets = [
            {"industry": p.industry, "benchmark_id": p.pk, "thresholds": thresholds_display(p.thresholds)}
            for p in selectors.rfm_preset_list()
        ]
        return self.ok(
            benchmark=services.rfm_benchmark_state(active) if active else None,
            presets=presets,
        )

    @extend_schema(request=ThresholdsInput, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        data = self.validated(ThresholdsInput, request.data)
        _check_merchant_id(request, data)
        benchmark = services.rfm_thresholds_update(
            merchant=request.merchant,
            actor=request.staff,
            industry=data["industry"],
            thresholds=data["thresholds"],
            locale=request.locale,
        )
        return self.ok(benchmark_id=benchmark.pk)


class RfmThresholdsPreviewApi(MerchantApiView):
    """Segment counts the given thresholds would produce; nothing is saved (the wizard's preview)."""

    required_scope = SCOPE

    @extend_schema(request=ThresholdsInput, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = self.validated(ThresholdsInput, request.data)
        _check_merchant_id(request, data)
        industry = services.industry_normalize(data["industry"])
        parsed = thresholds_parse(data["thresholds"], base=preset_thresholds(industry))
        horizon = selectors.rfm_settings_get(merchant=request.merchant).horizon_days
        counts = scoring.preview_counts(
            merchant_id=request.merchant.pk, thresholds=parsed, now=timezone.now(), horizon_days=horizon
        )
        return self.ok(
            thresholds=thresholds_display(parsed),
            segments=selectors.segment_detail(merchant=request.merchant, counts=counts),
            distribution=selectors.segment_distribution(merchant=request.merchant, counts=counts),
        )


class ForecastInput(StrictSerializer):
    merchant_id = MerchantIdField()
    customer_ids = serializers.ListField(
        child=serializers.CharField(max_length=40), min_length=1, max_length=settings.RFM_FORECAST_MAX_CUSTOMERS
    )
    locale = LocaleField()


class ChurnForecastApi(MerchantApiView):
    """Predict churn for customers of the shop and update their score and lifecycle stage."""

    required_scope = SCOPE

    @extend_schema(request=ForecastInput, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = self.validated(ForecastInput, request.data)
        _check_merchant_id(request, data)
        wanted = list(dict.fromkeys(data["customer_ids"]))
        found = set(
            Customer.objects.filter(merchant=request.merchant, pk__in=wanted, redacted_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        if len(found) != len(wanted):
            raise errors.NotFound(_("Customer not found."))
        forecasts = services.churn_forecast(merchant=request.merchant, customer_ids=wanted, actor=request.staff)
        return self.ok(forecasts=forecasts)


class RfmScoresRefreshApi(MerchantApiView):
    """Rescore every customer now (the nightly run, on demand)."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        incremental = serializers.BooleanField(required=False, default=False)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        run = services.rfm_scores_refresh(merchant=request.merchant, incremental=data["incremental"])
        if run is None:
            return self.ok(run_id=None, kind="incremental", customers_scored=0)
        return self.ok(run_id=run.pk, kind=run.kind, customers_scored=run.customers_scored)


class RfmSegmentsApi(MerchantApiView):
    """Customers per segment: the seeds' five and the 11 standard segments."""

    required_scope = SCOPE

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        counts = selectors.segment_counts(merchant=request.merchant)
        return self.ok(
            distribution=selectors.segment_distribution(merchant=request.merchant, counts=counts),
            segments=selectors.segment_detail(merchant=request.merchant, counts=counts),
        )


class RfmTransitionsApi(MerchantApiView):
    """Who moved between segments from one run to another (default: the last two full runs)."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        from_run = serializers.CharField(max_length=40, required=False)
        to_run = serializers.CharField(max_length=40, required=False)

    @extend_schema(parameters=[InputSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data = self.validated(self.InputSerializer, request.query_params.dict())
        merchant = request.merchant
        if "from_run" in data or "to_run" in data:
            runs = {
                r.pk
                for r in RfmRun.objects.filter(merchant=merchant, pk__in=[data.get("from_run"), data.get("to_run")])
            }
            if data.get("from_run") not in runs or data.get("to_run") not in runs:
                raise errors.NotFound(_("Scoring run not found."))
            older, newer = data["from_run"], data["to_run"]
            transitions = selectors.segment_transitions(merchant=merchant, from_run_id=older, to_run_id=newer)
        else:
            older_run, newer_run, transitions = selectors.latest_transitions(merchant=merchant)
            older = older_run.pk if older_run else None
            newer = newer_run.pk if newer_run else None
        customers = (
            selectors.segment_transition_customers(merchant=merchant, from_run_id=older, to_run_id=newer)
            if older and newer
            else []
        )
        return self.ok(from_run=older, to_run=newer, transitions=transitions, customers=customers)


class ChurnModelApi(MerchantApiView):
    """The active churn model's card."""

    required_scope = SCOPE

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        model = selectors.churn_model_active(merchant=request.merchant)
        return self.ok(model=selectors.churn_model_card(model) if model else None)


def _experiment_body(request, experiment) -> dict:
    return {
        "experiment_id": experiment.pk,
        "name": experiment.name,
        "status": experiment.status,
        "split_percent": experiment.split_percent,
        "outcome_days": experiment.outcome_days,
        "started_at": experiment.started_at,
        "thresholds_a": thresholds_display(experiment.thresholds_a),
        "thresholds_b": thresholds_display(experiment.thresholds_b),
        "results": services.rfm_experiment_results(merchant=request.merchant, experiment=experiment),
    }


class RfmExperimentListApi(MerchantApiView):
    """Threshold A/B tests: list them with their results, or start one."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=120)
        thresholds = serializers.JSONField(help_text="Variant B's thresholds; A is the current set.")
        split_percent = serializers.IntegerField(min_value=1, max_value=99, default=50)
        outcome_days = serializers.IntegerField(min_value=1, max_value=365, default=30)
        locale = LocaleField()

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        experiments = selectors.rfm_experiment_list(merchant=request.merchant)
        return self.ok(experiments=[_experiment_body(request, e) for e in experiments])

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        experiment = services.rfm_experiment_start(
            merchant=request.merchant,
            actor=request.staff,
            name=data["name"],
            thresholds_b=data["thresholds"],
            split_percent=data["split_percent"],
            outcome_days=data["outcome_days"],
        )
        return self.ok(status=201, experiment=_experiment_body(request, experiment))


class RfmExperimentStopApi(MerchantApiView):
    required_scope = SCOPE

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, experiment_id):
        experiment = selectors.rfm_experiment_get(merchant=request.merchant, experiment_id=experiment_id)
        if experiment is None:
            raise errors.NotFound(_("Experiment not found."))
        services.rfm_experiment_stop(merchant=request.merchant, experiment=experiment, actor=request.staff)
        return self.ok(experiment=_experiment_body(request, experiment))


class RfmSettingsApi(MerchantApiView):
    """The churn horizon, the model choice and the nudge policy."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        horizon_days = serializers.IntegerField(min_value=7, max_value=730, required=False)
        algorithm = serializers.ChoiceField(choices=RfmSettings.Algorithm.choices, required=False)
        nudge_threshold = serializers.FloatField(min_value=0.01, max_value=1.0, required=False)
        nudge_window_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
        nudges_enabled = serializers.BooleanField(required=False)
        locale = LocaleField()

    @staticmethod
    def _body(row) -> dict:
        return {
            "horizon_days": row.horizon_days,
            "algorithm": row.algorithm,
            "nudge_threshold": row.nudge_threshold,
            "nudge_window_days": row.nudge_window_days,
            "nudges_enabled": row.nudges_enabled,
        }

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return self.ok(settings=self._body(selectors.rfm_settings_get(merchant=request.merchant)))

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        data = self.validated(self.InputSerializer, request.data)
        data.pop("locale", None)
        row = services.rfm_settings_update(merchant=request.merchant, actor=request.staff, **data)
        return self.ok(settings=self._body(row))


class RfmStoreComparisonApi(MerchantApiView):
    """Segment distribution per store of the caller's store group (counts only)."""

    required_scope = SCOPE

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return self.ok(stores=selectors.cross_store_comparison(merchant=request.merchant))
