"""Advanced gamification: badge definitions, earned achievements, purchase streaks, teams and
their cycle scores.

`gamification_achievements` and `team_leaderboards` are the seeds' tables, hash-partitioned by
merchant on PostgreSQL (migration 0002); on SQLite they are plain tables. An achievement keeps
a copy of the badge's names as they were when it was earned, so editing a live badge never
changes or takes away what customers already hold.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.ids import PrefixedIdField
from apps.core.local_cache import ForgetsLocalCopies
from apps.core.models import Customer, Merchant, TimestampedModel
from apps.core.tenancy import TenantManager

from .rules import MONTH, WEEK, badge_name, rule_clean, validate_badge_name
from .widget_shape import widget_shape_forget

CYCLE_REGEX = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


class StreakPeriod(models.TextChoices):
    WEEK = WEEK, _("Week")
    MONTH = MONTH, _("Month")


class ActionType(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    REVIEW = "review", _("Product review")
    VISIT = "visit", _("Store visit")
    REFERRAL = "referral", _("Referral")
    SOCIAL_SHARE = "social_share", _("Social share")


def default_streak_actions():
    return [ActionType.PURCHASE.value]


def validate_rule(value):
    rule_clean(value)


def validate_streak_actions(value):
    if not isinstance(value, list) or not value or any(item not in ActionType.values for item in value):
        raise ValidationError(_("Choose at least one known action type."), code="invalid")


class GamificationSettings(TimestampedModel):
    """One merchant's streak settings: the period and the actions that keep a streak alive."""

    id = PrefixedIdField(prefix="gms")
    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="gamification_settings")
    streak_period = models.CharField(max_length=8, choices=StreakPeriod.choices, default=StreakPeriod.MONTH)
    streak_actions = models.JSONField(default=default_streak_actions, validators=[validate_streak_actions])
    # Streaks of at least this length send the `streak_earned` notification.
    streak_notify_min = models.PositiveSmallIntegerField(default=2)

    objects = TenantManager()

    class Meta:
        db_table = "gamification_settings"
        verbose_name_plural = "gamification settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(streak_period__in=StreakPeriod.values), name="gamification_settings_period_valid"
            ),
        ]

    def __str__(self):
        return f"Gamification settings of {self.merchant_id}"


class Badge(ForgetsLocalCopies, TimestampedModel):
    """A merchant's badge definition: names per locale, an icon and one rule."""

    id = PrefixedIdField(prefix="bdg")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.JSONField(validators=[validate_badge_name])
    icon = models.CharField(max_length=64, default="star")
    rule = models.JSONField(validators=[validate_rule])
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)

    objects = TenantManager()

    class Meta:
        db_table = "gamification_badges"
        ordering = ["merchant", "created_at", "id"]
        indexes = [models.Index(fields=["merchant", "is_active"], name="idx_gamification_badges_active")]

    def __str__(self):
        return badge_name(self.name, "en")

    def local_copies_forget(self) -> None:
        widget_shape_forget(self.merchant_id)


class Achievement(models.Model):
    """A badge a customer earned (once per badge), with the streak length at that moment."""

    id = PrefixedIdField(prefix="ach", db_column="achievement_id")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    badge_definition = models.ForeignKey(Badge, on_delete=models.PROTECT, related_name="achievements", db_index=False)
    # The seeds' column: the badge's names when it was earned.
    badge = models.JSONField(validators=[validate_badge_name])
    streak_count = models.PositiveIntegerField(default=0)
    # What earned it: "order", "ledger", "streak_api", "flow", "manual".
    source = models.CharField(max_length=16, default="order")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "gamification_achievements"
        ordering = ["customer", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "customer", "badge_definition"], name="gamification_achievements_once"
            ),
            models.CheckConstraint(condition=Q(streak_count__gte=0), name="gamification_achievements_streak_gte_0"),
        ]
        # The seeds' idx_gamification_achievements_customer_id (customer_id, created_at) is
        # created by migration 0002 (its name is longer than Django allows in Meta.indexes).

    def __str__(self):
        return f"{badge_name(self.badge, 'en')} ({self.customer_id})"


class Streak(models.Model):
    """A customer's streak: consecutive periods with a qualifying action."""

    id = PrefixedIdField(prefix="stk")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    current_count = models.PositiveIntegerField(default=0)
    longest_count = models.PositiveIntegerField(default=0)
    # First day of the last period with a qualifying action (merchant's time zone).
    last_period_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "gamification_streaks"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "customer"], name="gamification_streaks_customer_unique"),
            models.CheckConstraint(
                condition=Q(longest_count__gte=models.F("current_count")), name="gamification_streaks_longest"
            ),
        ]
        indexes = [
            models.Index(
                fields=["merchant", "last_period_date"],
                condition=Q(current_count__gt=0),
                name="idx_gamification_streaks_live",
            )
        ]

    def __str__(self):
        return f"{self.customer_id}: {self.current_count}"


class Team(ForgetsLocalCopies, TimestampedModel):
    """A merchant-defined team of one cycle (`2025-07`)."""

    id = PrefixedIdField(prefix="team")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    cycle = models.CharField(max_length=7)
    name = models.JSONField(validators=[validate_badge_name])
    is_open = models.BooleanField(default=True)  # shoppers may join from the storefront

    objects = TenantManager()

    class Meta:
        db_table = "gamification_teams"
        ordering = ["merchant", "cycle", "created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(cycle__regex=CYCLE_REGEX), name="gamification_teams_cycle_valid"),
        ]
        indexes = [models.Index(fields=["merchant", "cycle"], name="idx_gamification_teams_cycle")]

    def __str__(self):
        return f"{badge_name(self.name, 'en')} ({self.cycle})"

    def local_copies_forget(self) -> None:
        widget_shape_forget(self.merchant_id)


class TeamMembership(models.Model):
    """A customer's team in a cycle: one team per customer and cycle."""

    id = PrefixedIdField(prefix="tmm")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    cycle = models.CharField(max_length=7)
    joined_via = models.CharField(max_length=16, default="storefront")  # or "assigned"
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "gamification_team_members"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "customer", "cycle"], name="gamification_team_members_one_per_cycle"
            ),
        ]
        indexes = [models.Index(fields=["team"], name="idx_gamification_team_members")]

    def __str__(self):
        return f"{self.customer_id} in {self.team_id}"


class TeamLeaderboard(models.Model):
    """The seeds' `team_leaderboards`: a team's score in a cycle (points earned by its members
    during the cycle, or set by the merchant through the API)."""

    id = PrefixedIdField(prefix="tlb", db_column="leaderboard_id")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    # The seeds' text column; holds a Team id of the same merchant.
    team_id = models.CharField(max_length=40)
    score = models.IntegerField(default=0)
    cycle = models.CharField(max_length=7)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "team_leaderboards"
        ordering = ["merchant", "cycle", "-score", "-team_id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "team_id", "cycle"], name="team_leaderboards_team_cycle"),
            models.CheckConstraint(condition=Q(score__gte=0), name="team_leaderboards_score_gte_0"),
            models.CheckConstraint(condition=Q(cycle__regex=CYCLE_REGEX), name="team_leaderboards_cycle_valid"),
        ]
        # The seeds' idx_team_leaderboards_merchant_id_cycle is created by migration 0002.

    def __str__(self):
        return f"{self.team_id} {self.cycle}: {self.score}"
