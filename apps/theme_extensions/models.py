"""Counters of the storefront widgets' impressions and clicks, per variant and day."""

from django.db import models
from django.db.models import Q

from apps.core.ids import PrefixedIdField
from apps.core.models import Merchant
from apps.core.tenancy import TenantManager


class WidgetEventKind(models.TextChoices):
    IMPRESSION = "impression", "impression"
    CLICK = "click", "click"


class WidgetEventCount(models.Model):
    """How often a widget variant was seen or clicked on a day (one row per key, counted up
    with INSERT … ON CONFLICT, so a busy storefront never inserts a row per impression)."""

    id = PrefixedIdField(prefix="wev")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    widget = models.CharField(max_length=32)
    variant = models.CharField(max_length=20)
    placement = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=WidgetEventKind.choices)
    day = models.DateField()
    count = models.PositiveBigIntegerField(default=0)

    objects = TenantManager()

    class Meta:
        db_table = "theme_widget_event_counts"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "widget", "variant", "placement", "kind", "day"],
                name="theme_widget_event_counts_key_unique",
            ),
            models.CheckConstraint(condition=Q(kind__in=WidgetEventKind.values), name="theme_widget_event_kind_valid"),
        ]

    def __str__(self):
        return f"{self.widget}/{self.variant} {self.kind} {self.day}: {self.count}"
