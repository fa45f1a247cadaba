"""Staff admin of gamification: badges, achievements, streaks, teams, memberships and scores.
Read-only: every change goes through the services (audited, streamed, kept in Redis). Rows hold
ids, counts and merchant-entered names only, no personal data."""

from django.contrib import admin

from apps.core.admin.base import EstimatedCountPaginator, MerchantFilter, ReadOnlyAdmin

from .models import Achievement, Badge, GamificationSettings, Streak, Team, TeamLeaderboard, TeamMembership


@admin.register(GamificationSettings)
class GamificationSettingsAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "streak_period", "streak_actions", "updated_at")
    exact_search_fields = ("merchant__id",)
    lowercase_search_fields = ("merchant__shop_domain",)


@admin.register(Badge)
class BadgeAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant", "icon", "is_active", "version", "created_at")
    list_filter = ("is_active", MerchantFilter)
    exact_search_fields = ("id", "merchant__id")


class LargeReadOnlyAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("-id",)
    sortable_by = ("id",)


@admin.register(Achievement)
class AchievementAdmin(LargeReadOnlyAdmin):
    list_display = ("id", "merchant", "customer", "badge_definition", "streak_count", "source", "created_at")
    list_filter = (MerchantFilter,)
    exact_search_fields = ("id", "customer__id", "badge_definition__id")


@admin.register(Streak)
class StreakAdmin(LargeReadOnlyAdmin):
    list_display = ("customer", "merchant", "current_count", "longest_count", "last_period_date")
    list_filter = (MerchantFilter,)
    exact_search_fields = ("customer__id",)


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    # Names never change (ranking reads cache them): read-only like everything here.
    list_display = ("id", "merchant", "cycle", "is_open", "created_at")
    list_filter = (MerchantFilter,)
    exact_search_fields = ("id", "cycle")


@admin.register(TeamMembership)
class TeamMembershipAdmin(LargeReadOnlyAdmin):
    list_display = ("customer", "team", "cycle", "joined_via", "created_at")
    exact_search_fields = ("customer__id", "team__id")


@admin.register(TeamLeaderboard)
class TeamLeaderboardAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant", "team_id", "cycle", "score", "updated_at")
    list_filter = (MerchantFilter,)
    exact_search_fields = ("team_id", "cycle")
