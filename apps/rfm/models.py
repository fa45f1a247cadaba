"""Advanced RFM analytics: thresholds (versioned benchmarks), score runs and history, churn
model cards, churn-risk nudges and threshold experiments.

`rfm_benchmarks` holds the industry presets (no merchant) and every version of every
merchant's thresholds (the active one has `is_active`). `rfm_score_history` is
hash-partitioned by merchant on PostgreSQL (migration 0002).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.ids import PrefixedIdField
from apps.core.models import Customer, LifecycleStage, Merchant, StaffMember
from apps.core.tenancy import TenantManager


class Segment(models.TextChoices):
    """The 11 standard RFM segments (stored in `users.rfm_segment`)."""

    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential Loyalist")
    NEW = "new", _("New")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need Attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to Sleep")
    AT_RISK = "at_risk", _("At Risk")
    CANT_LOSE = "cant_lose", _("Can't Lose Them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


class SegmentGroup(models.TextChoices):
    """The seeds' five segments, each a roll-up of standard segments."""

    CHAMPIONS = "Champions", _("Champions")
    LOYAL = "Loyal", _("Loyal")
    AT_RISK = "At-Risk", _("At-Risk")
    NEW = "New", _("New")
    INACTIVE = "Inactive", _("Inactive")


ROLLUP = {
    Segment.CHAMPIONS: SegmentGroup.CHAMPIONS,
    Segment.LOYAL: SegmentGroup.LOYAL,
    Segment.POTENTIAL_LOYALIST: SegmentGroup.LOYAL,
    Segment.NEW: SegmentGroup.NEW,
    Segment.PROMISING: SegmentGroup.NEW,
    Segment.NEED_ATTENTION: SegmentGroup.AT_RISK,
    Segment.ABOUT_TO_SLEEP: SegmentGroup.AT_RISK,
    Segment.AT_RISK: SegmentGroup.AT_RISK,
    Segment.CANT_LOSE: SegmentGroup.AT_RISK,
    Segment.HIBERNATING: SegmentGroup.INACTIVE,
    Segment.LOST: SegmentGroup.INACTIVE,
}
# The seeds' chart colours, in the seeds' order.
GROUP_COLOURS = {
    SegmentGroup.CHAMPIONS: ("#4CAF50", "#388E3C"),
    SegmentGroup.LOYAL: ("#2196F3", "#1976D2"),
    SegmentGroup.AT_RISK: ("#FF9800", "#F57C00"),
    SegmentGroup.NEW: ("#9C27B0", "#7B1FA2"),
    SegmentGroup.INACTIVE: ("#F44336", "#D32F2F"),
}


class PresetManager(models.Manager):
    """Industry presets: global rows, readable without a merchant scope."""

    def get_queryset(self):
        return super().get_queryset().filter(merchant__isnull=True)


class RfmBenchmark(models.Model):
    """One version of a merchant's thresholds, or an industry preset (no merchant)."""

    id = PrefixedIdField(prefix="bm", db_column="benchmark_id")
    merchant = models.ForeignKey(Merchant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    industry = models.CharField(max_length=32)
    # The seeds' rows name the segment their top bar defines; every row here holds the full
    # ladder, whose level 5 is the Champions bar.
    segment_name = models.CharField(max_length=32, default=SegmentGroup.CHAMPIONS)
    thresholds = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    actor = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()
    presets = PresetManager()

    class Meta:
        db_table = "rfm_benchmarks"
        ordering = ["merchant", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "version"], name="rfm_benchmarks_merchant_version_unique"),
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(is_active=True), name="rfm_benchmarks_one_active_per_merchant"
            ),
        ]
        indexes = [models.Index(fields=["industry"], name="idx_rfm_benchmarks_industry")]

    def __str__(self):
        return f"{self.industry} v{self.version}"


class RfmSettings(models.Model):
    """A merchant's churn horizon, model choice and nudge policy."""

    class Algorithm(models.TextChoices):
        AUTO = "auto", _("Best on validation")
        LOGISTIC_REGRESSION = "logistic_regression", _("Logistic regression")
        MLP = "mlp", _("Neural network (MLP)")

    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, primary_key=True, related_name="+")
    horizon_days = models.PositiveIntegerField(default=90)
    algorithm = models.CharField(max_length=24, choices=Algorithm.choices, default=Algorithm.AUTO)
    nudge_threshold = models.FloatField(default=0.7)
    nudge_window_days = models.PositiveIntegerField(default=30)
    nudges_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "rfm_settings"
        constraints = [
            models.CheckConstraint(condition=Q(horizon_days__gte=7, horizon_days__lte=730), name="rfm_horizon_range"),
            models.CheckConstraint(
                condition=Q(nudge_threshold__gt=0, nudge_threshold__lte=1), name="rfm_nudge_threshold_range"
            ),
        ]

    def __str__(self):
        return f"RFM settings of {self.merchant_id}"


class RfmRun(models.Model):
    """One scoring run: full (every customer) or incremental (customers touched since)."""

    class Kind(models.TextChoices):
        FULL = "full", _("Full")
        INCREMENTAL = "incremental", _("Incremental")

    id = PrefixedIdField(prefix="rrun")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    benchmark = models.ForeignKey(RfmBenchmark, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The bars actually applied (quintile runs turn their cut points into bars).
    effective_thresholds = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    customers_scored = models.PositiveIntegerField(default=0)
    segment_counts = models.JSONField(default=dict)

    objects = TenantManager()

    class Meta:
        db_table = "rfm_runs"
        ordering = ["merchant", "-started_at"]
        indexes = [models.Index(fields=["merchant", "-started_at"], name="idx_rfm_runs_merchant_time")]

    def __str__(self):
        return f"{self.kind} run {self.pk}"


class RfmScoreHistory(models.Model):
    """A customer's scores in one run. Hash-partitioned by merchant on PostgreSQL."""

    id = PrefixedIdField(prefix="rsh", db_column="history_id")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    run = models.ForeignKey(RfmRun, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    rfm_score = models.JSONField()
    segment = models.CharField(max_length=32, choices=Segment.choices)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices)
    created_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        db_table = "rfm_score_history"
        ordering = ["merchant", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(lifecycle_stage__in=LifecycleStage.values), name="rfm_score_history_lifecycle_valid"
            ),
        ]
        # The seeds' `idx_rfm_score_history_customer_id` (customer_id, created_at) is longer than
        # Django allows an index name to be; migration 0002 creates it with SQL.
        indexes = [models.Index(fields=["run", "customer"], name="idx_rfm_score_history_run")]

    def __str__(self):
        return self.pk


class ChurnModel(models.Model):
    """A trained churn model and its card. Parameters are plain numbers (no pickles)."""

    class Algorithm(models.TextChoices):
        LOGISTIC_REGRESSION = "logistic_regression", _("Logistic regression")
        MLP = "mlp", _("Neural network (MLP)")
        POOLED_INDUSTRY = "pooled_industry", _("Pooled industry model")
        RECENCY_RULE = "recency_rule", _("Recency rule (too little history)")
        REMOTE = "remote", _("Remote model (xAI)")

    id = PrefixedIdField(prefix="cm")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    algorithm = models.CharField(max_length=24, choices=Algorithm.choices)
    horizon_days = models.PositiveIntegerField()
    cutoff_at = models.DateTimeField(help_text="Features as of this moment; labels are the horizon after it.")
    trained_at = models.DateTimeField()
    customers = models.PositiveIntegerField(default=0)
    validation_customers = models.PositiveIntegerField(default=0)
    auc = models.FloatField(null=True, blank=True)
    accuracy = models.FloatField(null=True, blank=True)
    baseline_accuracy = models.FloatField(null=True, blank=True, help_text='Accuracy of "everyone churns".')
    churn_rate = models.FloatField(null=True, blank=True)
    candidates = models.JSONField(default=list, blank=True)
    parameters = models.JSONField(default=dict)
    note = models.CharField(max_length=255, blank=True, default="")
    is_active = models.BooleanField(default=True)

    objects = TenantManager()

    class Meta:
        db_table = "rfm_churn_models"
        ordering = ["merchant", "-trained_at"]
        indexes = [models.Index(fields=["merchant", "-trained_at"], name="idx_rfm_churn_models_time")]

    def __str__(self):
        return f"{self.algorithm} {self.pk}"


class ChurnNudge(models.Model):
    """A churn-risk nudge sent to a customer; at most one per customer per window."""

    id = PrefixedIdField(prefix="nudge")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    churn_score = models.FloatField()
    window = models.PositiveIntegerField(help_text="Days since the epoch divided by the window length.")
    experiment = models.ForeignKey(
        "RfmExperiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="nudges"
    )
    variant = models.CharField(max_length=1, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "rfm_churn_nudges"
        ordering = ["merchant", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "window"], name="rfm_churn_nudges_one_per_window"),
        ]
        indexes = [models.Index(fields=["merchant", "-created_at"], name="idx_rfm_nudges_merchant_time")]

    def __str__(self):
        return self.pk


class RfmExperiment(models.Model):
    """A threshold A/B test: two threshold sets and a split; outcome = repeat purchase within
    `outcome_days` after a nudge."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")

    id = PrefixedIdField(prefix="exp")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=120)
    thresholds_a = models.JSONField()
    thresholds_b = models.JSONField()
    split_percent = models.PositiveSmallIntegerField(default=50, help_text="Share of customers in variant B.")
    outcome_days = models.PositiveIntegerField(default=30)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "rfm_experiments"
        ordering = ["merchant", "-started_at"]
        constraints = [
            models.CheckConstraint(condition=Q(split_percent__gte=1, split_percent__lte=99), name="rfm_split_range"),
        ]

    def __str__(self):
        return self.name
