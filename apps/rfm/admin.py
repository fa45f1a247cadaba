"""Staff admin of RFM analytics: thresholds versions and presets, runs, model cards, nudges,
experiments. Read-only: every change goes through the services (versioned and audited). Rows
hold scores and ids only, no personal data."""

from django.contrib import admin

from apps.core.admin.base import EstimatedCountPaginator, MerchantFilter, ReadOnlyAdmin

from .models import ChurnModel, ChurnNudge, RfmBenchmark, RfmExperiment, RfmRun, RfmScoreHistory, RfmSettings


@admin.register(RfmBenchmark)
class RfmBenchmarkAdmin(ReadOnlyAdmin):
    fields = ("id", "merchant", "industry", "segment_name", "version", "is_active", "thresholds", "actor", "created_at")
    list_display = ("id", "merchant", "industry", "version", "is_active", "created_at")
    list_filter = (MerchantFilter, "industry", "is_active")
    list_select_related = ("merchant",)
    exact_search_fields = ("id",)
    ordering = ("merchant", "-version")


@admin.register(RfmSettings)
class RfmSettingsAdmin(ReadOnlyAdmin):
    fields = (
        "merchant",
        "horizon_days",
        "algorithm",
        "nudge_threshold",
        "nudge_window_days",
        "nudges_enabled",
        "updated_at",
    )
    list_display = ("merchant", "horizon_days", "algorithm", "nudge_threshold", "nudge_window_days", "nudges_enabled")
    list_filter = (MerchantFilter, "algorithm", "nudges_enabled")
    list_select_related = ("merchant",)


@admin.register(RfmRun)
class RfmRunAdmin(ReadOnlyAdmin):
    fields = (
        "id",
        "merchant",
        "benchmark",
        "kind",
        "started_at",
        "finished_at",
        "customers_scored",
        "segment_counts",
        "effective_thresholds",
    )
    list_display = ("id", "merchant", "kind", "started_at", "finished_at", "customers_scored")
    list_filter = (MerchantFilter, "kind")
    list_select_related = ("merchant",)
    exact_search_fields = ("id",)
    ordering = ("-started_at",)


@admin.register(RfmScoreHistory)
class RfmScoreHistoryAdmin(ReadOnlyAdmin):
    fields = ("id", "merchant", "customer", "run", "rfm_score", "segment", "lifecycle_stage", "created_at")
    list_display = ("id", "merchant", "customer_id", "run_id", "segment", "lifecycle_stage", "created_at")
    list_filter = (MerchantFilter, "segment", "lifecycle_stage")
    exact_search_fields = ("id", "customer__id", "run__id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("-created_at",)
    sortable_by = ("created_at",)


@admin.register(ChurnModel)
class ChurnModelAdmin(ReadOnlyAdmin):
    fields = (
        "id",
        "merchant",
        "algorithm",
        "horizon_days",
        "cutoff_at",
        "trained_at",
        "customers",
        "validation_customers",
        "auc",
        "accuracy",
        "baseline_accuracy",
        "churn_rate",
        "candidates",
        "note",
        "is_active",
        "parameters",
    )
    list_display = (
        "id",
        "merchant",
        "algorithm",
        "trained_at",
        "customers",
        "auc",
        "accuracy",
        "baseline_accuracy",
        "is_active",
    )
    list_filter = (MerchantFilter, "algorithm", "is_active")
    list_select_related = ("merchant",)
    exact_search_fields = ("id",)
    ordering = ("-trained_at",)


@admin.register(ChurnNudge)
class ChurnNudgeAdmin(ReadOnlyAdmin):
    fields = ("id", "merchant", "customer", "churn_score", "window", "experiment", "variant", "created_at")
    list_display = ("id", "merchant", "customer_id", "churn_score", "experiment_id", "variant", "created_at")
    list_filter = (MerchantFilter, "variant")
    exact_search_fields = ("id", "customer__id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("-created_at",)


@admin.register(RfmExperiment)
class RfmExperimentAdmin(ReadOnlyAdmin):
    fields = (
        "id",
        "merchant",
        "name",
        "status",
        "split_percent",
        "outcome_days",
        "thresholds_a",
        "thresholds_b",
        "started_at",
        "stopped_at",
    )
    list_display = ("id", "merchant", "name", "status", "split_percent", "outcome_days", "started_at")
    list_filter = (MerchantFilter, "status")
    list_select_related = ("merchant",)
    exact_search_fields = ("id",)
    ordering = ("-started_at",)
