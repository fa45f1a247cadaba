"""Reads of advanced gamification: badges, a shopper's achievements and streak, team rankings
and the Chart.js data of the merchant page and the widget."""

from django.utils import timezone

from apps.core.locales import is_rtl
from apps.core.streams import stream_latest
from apps.slack_community.selectors import beta_feature_enabled

from . import rules
from .awarding import settings_for
from .leaderboard import leaderboard_rank, leaderboard_top
from .models import Achievement, Badge, Streak, Team, TeamMembership

__all__ = [
    "badge_list",
    "current_cycle",
    "customer_badge_list",
    "gamification_settings_get",
    "streak_get",
    "team_list",
    "team_rank_for_customer",
    "team_ranking",
    "team_ranking_chart",
    "teams_on_storefront",
    "widget_contribution",
]

gamification_settings_get = settings_for


def teams_on_storefront(merchant) -> bool:
    """Shopper-facing teams (join from the storefront, team ranks in the widget) are the
    `team_leaderboards` beta feature of LoyalNest Collective; staff-managed teams, scores and the
    merchant page's leaderboard are for every merchant."""
    return beta_feature_enabled(merchant, "team_leaderboards")


def current_cycle(*, merchant, now=None) -> str:
    return rules.cycle_key(now or timezone.now(), rules.merchant_zone(merchant))


def badge_display(badge: Badge, locale: str) -> dict:
    return {
        "badge_id": badge.pk,
        "name": rules.badge_name(badge.name, locale),
        "names": badge.name,
        "icon": badge.icon,
        "rule": badge.rule,
        "is_active": badge.is_active,
        "version": badge.version,
        "earned_count": getattr(badge, "earned_count", None),
    }


def badge_list(*, merchant, locale: str = "en", include_archived: bool = True) -> list[dict]:
    from django.db.models import Count

    badges = Badge.objects.filter(merchant=merchant).annotate(earned_count=Count("achievements")).order_by("created_at")
    if not include_archived:
        badges = badges.filter(is_active=True)
    return [badge_display(badge, locale) for badge in badges]


def customer_badge_list(*, merchant, customer, locale: str) -> list[dict]:
    """The customer's badges, newest first, named as when earned (in `locale`, else English)."""
    achievements = (
        Achievement.objects.filter(merchant=merchant, customer=customer)
        .select_related("badge_definition")
        .order_by("-created_at", "-id")
    )
    return [
        {
            "achievement_id": achievement.pk,
            "badge_id": achievement.badge_definition_id,
            "name": rules.badge_name(achievement.badge, locale),
            "icon": achievement.badge_definition.icon,
            "streak_count": achievement.streak_count,
            "earned_at": achievement.created_at.isoformat(),
        }
        for achievement in achievements
    ]


def streak_get(*, merchant, customer, now=None) -> dict:
    """The customer's streak as of now: a streak whose last qualifying period is older than the
    previous period reads as 0 even before the nightly reset (lazy evaluation)."""
    settings = settings_for(merchant)
    zone = rules.merchant_zone(merchant)
    today = rules.period_start(now or timezone.now(), settings.streak_period, zone)

    def from_database():
        row = Streak.objects.filter(merchant=merchant, customer=customer).first()
        if row is None:
            return {"streak_count": 0, "longest_count": 0, "last_period_date": None}
        return {
            "streak_count": row.current_count,
            "longest_count": row.longest_count,
            "last_period_date": row.last_period_date.isoformat() if row.last_period_date else None,
        }

    state = stream_latest(merchant_id=merchant.pk, key=f"streak:{customer.pk}", fallback=from_database) or {}
    last = state.get("last_period_date")
    last_date = timezone.datetime.fromisoformat(last).date() if last else None
    count = rules.streak_current(
        count=int(state.get("streak_count") or 0), last=last_date, today_start=today, period=settings.streak_period
    )
    return {
        "streak_count": count,
        "longest_count": int(state.get("longest_count") or 0),
        "period": settings.streak_period,
        "last_period_date": last,
        "current_period_done": last_date == today if last_date else False,
    }


def team_list(*, merchant, cycle: str | None = None, locale: str = "en") -> list[dict]:
    teams = Team.objects.filter(merchant=merchant)
    if cycle:
        teams = teams.filter(cycle=cycle)
    from django.db.models import Count

    teams = teams.annotate(member_count=Count("memberships")).order_by("cycle", "created_at")
    return [
        {
            "team_id": team.pk,
            "cycle": team.cycle,
            "name": rules.badge_name(team.name, locale),
            "names": team.name,
            "is_open": team.is_open,
            "member_count": team.member_count,
        }
        for team in teams
    ]


# Team names never change once a team is created (no API edits them; admin shows them read-only),
# so a process-wide cache keeps ranking reads to one Redis round trip. Bounded; cleared when full.
_TEAM_NAMES: dict[str, dict] = {}
TEAM_NAMES_CACHE_SIZE = 100_000


def _names(*, merchant, team_ids, locale: str) -> dict[str, str]:
    missing = [team_id for team_id in team_ids if team_id not in _TEAM_NAMES]
    if missing:
        if len(_TEAM_NAMES) + len(missing) > TEAM_NAMES_CACHE_SIZE:
            _TEAM_NAMES.clear()
        _TEAM_NAMES.update(Team.objects.filter(merchant=merchant, pk__in=missing).values_list("pk", "name"))
    return {team_id: rules.badge_name(_TEAM_NAMES[team_id], locale) for team_id in team_ids if team_id in _TEAM_NAMES}


def team_ranking(*, merchant, cycle: str, limit: int = 10, locale: str = "en") -> list[dict]:
    """The top `limit` teams of the cycle: rank, team id, name in `locale`, score."""
    top = leaderboard_top(merchant_id=merchant.pk, cycle=cycle, limit=limit)
    names = _names(merchant=merchant, team_ids=[team_id for team_id, _score in top], locale=locale)
    return [
        {"rank": position, "team_id": team_id, "name": names.get(team_id, team_id), "score": score}
        for position, (team_id, score) in enumerate(top, start=1)
    ]


def team_rank_for_customer(*, merchant, customer, cycle: str, locale: str = "en") -> dict | None:
    """The customer's team in the cycle with its rank and score, or None outside any team
    (one indexed read of the membership with its team's names, one Redis round trip)."""
    found = (
        TeamMembership.objects.filter(merchant=merchant, customer=customer, cycle=cycle)
        .values_list("team_id", "team__name")
        .first()
    )
    if found is None:
        return None
    team_id, name = found
    placed = leaderboard_rank(merchant_id=merchant.pk, cycle=cycle, team_id=team_id)
    return {
        "team_id": team_id,
        "name": rules.badge_name(name, locale),
        "rank": placed[0] if placed else None,
        "score": placed[1] if placed else 0,
    }


BAR_COLOURS = ["#2196F3", "#4CAF50", "#FF9800", "#9C27B0", "#F44336", "#009688", "#795548", "#607D8B"]


def team_ranking_chart(ranking: list[dict]) -> dict:
    """Chart.js `bar` data for team ranks (the seeds: bar type for team rankings)."""
    return {
        "type": "bar",
        "data": {
            "labels": [row["name"] for row in ranking],
            "datasets": [
                {
                    "label": "score",
                    "data": [row["score"] for row in ranking],
                    "backgroundColor": [BAR_COLOURS[i % len(BAR_COLOURS)] for i in range(len(ranking))],
                }
            ],
        },
    }


def streak_distribution_chart(*, merchant, periods: int = 12) -> dict:
    """Chart.js `line` data: how many customers have each streak length (1…N) right now."""
    from django.db.models import Count

    rows = dict(
        Streak.objects.filter(merchant=merchant, current_count__gt=0)
        .values("current_count")
        .annotate(n=Count("id"))
        .values_list("current_count", "n")
    )
    labels = list(range(1, periods + 1))
    data = [rows.get(length, 0) for length in labels[:-1]]
    data.append(sum(n for length, n in rows.items() if length >= periods))
    return {
        "type": "line",
        "data": {
            "labels": [str(x) for x in labels[:-1]] + [f"{periods}+"],
            "datasets": [{"label": "customers", "data": data}],
        },
    }


def widget_contribution(*, merchant, customer, locale: str) -> dict | None:
    """What the storefront widgets show a shopper: badges, streak, team rank (Chart.js line for
    the streak, bar for team ranks)."""
    if customer is None:
        return None
    cycle = current_cycle(merchant=merchant)
    teams = teams_on_storefront(merchant)  # else no team ranks (same shape, empty)
    ranking = team_ranking(merchant=merchant, cycle=cycle, limit=5, locale=locale) if teams else []
    streak = streak_get(merchant=merchant, customer=customer)
    return {
        "dir": "rtl" if is_rtl(locale) else "ltr",
        "badges": customer_badge_list(merchant=merchant, customer=customer, locale=locale)[:12],
        "streak": streak,
        "team": team_rank_for_customer(merchant=merchant, customer=customer, cycle=cycle, locale=locale)
        if teams
        else None,
        "teams": ranking,
        "cycle": cycle,
        "charts": {"teams": team_ranking_chart(ranking)},
    }
