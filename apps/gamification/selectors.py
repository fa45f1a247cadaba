"""Reads of advanced gamification: badges, a shopper's achievements and streak, team rankings
and the Chart.js data of the merchant page and the widget."""

import json
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from apps.core.locales import is_rtl
from apps.core.services import shopper_expression_get
from apps.core.streams import stream_latest
from apps.slack_community.selectors import beta_feature_enabled, beta_feature_enabled_in_request

from . import rules
from .awarding import settings_for
from .leaderboard import leaderboard_rank, leaderboard_top, leaderboard_top_and_rank
from .models import Achievement, Badge, Streak, StreakPeriod, Team, TeamMembership
from .widget_shape import widget_shapes

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

    def from_database():
        row = Streak.objects.filter(merchant=merchant, customer=customer).first()
        if row is None:
            return {"streak_count": 0, "longest_count": 0, "last_period_date": None}
        return {
            "streak_count": row.current_count,
            "longest_count": row.longest_count,
            "last_period_date": row.last_period_date.isoformat() if row.last_period_date else None,
        }

    return _streak_now(
        merchant=merchant, customer=customer, period=settings_for(merchant).streak_period, stored=from_database, now=now
    )


def _streak_now(*, merchant, customer, period: str, stored, now=None) -> dict:
    """The streak from the newest entry of its stream, else `stored()` (the database row)."""
    state = stream_latest(merchant_id=merchant.pk, key=f"streak:{customer.pk}", fallback=stored) or {}
    return _streak_state(merchant=merchant, period=period, state=state, now=now)


def _streak_state(*, merchant, period: str, state: dict, now=None) -> dict:
    """A stored streak as of now: a streak whose last period is over without a new one is broken."""
    today = rules.period_start(now or timezone.now(), period, rules.merchant_zone(merchant))
    last = state.get("last_period_date")
    last_date = timezone.datetime.fromisoformat(last).date() if last else None
    count = rules.streak_current(
        count=int(state.get("streak_count") or 0), last=last_date, today_start=today, period=period
    )
    return {
        "streak_count": count,
        "longest_count": int(state.get("longest_count") or 0),
        "period": period,
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


# Everything of one shopper the widget shows, as one SQL expression over the shopper's row `u`
# (read with the app proxy's shopper lookup, see apps/theme_extensions/registry.py): the
# merchant's streak period, the streak row, this cycle's team membership with the team's names
# and the newest badges. A shop without teams this cycle or without badges skips those reads
# (most of the statement's planning time). PostgreSQL and SQLite (`make run`) spell the JSON
# functions differently.
def _widget_sql(*, teams: bool, badges: bool) -> str:
    postgres = connection.vendor == "postgresql"
    array = "json_build_array" if postgres else "json_array"
    agg = "json_agg" if postgres else "json_group_array"
    created = "to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')" if postgres else "a.created_at"
    membership = f"""(SELECT {array}(m.team_id, t.name)
     FROM gamification_team_members m JOIN gamification_teams t ON t.id = m.team_id
     WHERE m.merchant_id = %(gamification_merchant)s AND m.customer_id = u.id AND m.cycle = %(gamification_cycle)s)"""  # noqa: S608  (as below)
    achievements = f"""(SELECT {agg}({array}(a.achievement_id, a.badge_definition_id, a.badge, b.icon, a.streak_count, {created}))
     FROM (SELECT * FROM gamification_achievements
           WHERE merchant_id = %(gamification_merchant)s AND customer_id = u.id
           ORDER BY created_at DESC, achievement_id DESC LIMIT %(gamification_badges)s) a
     JOIN gamification_badges b ON b.id = a.badge_definition_id)"""  # noqa: S608  (functions chosen above; values bound)
    return f"""{array}(
  (SELECT streak_period FROM gamification_settings WHERE merchant_id = %(gamification_merchant)s),
  (SELECT {array}(current_count, longest_count, last_period_date)
     FROM gamification_streaks WHERE merchant_id = %(gamification_merchant)s AND customer_id = u.id),
  {membership if teams else "NULL"},
  {achievements if badges else "NULL"})"""  # noqa: S608  (as above)


def _widget_shape(merchant, cycle: str) -> tuple[bool, bool]:
    """(has teams this cycle, has badges), kept a few seconds per process (`widget_shape`)."""
    shape = widget_shapes.get((merchant.pk, cycle))
    if shape is None:
        shape = (
            Team.objects.filter(merchant=merchant, cycle=cycle).exists(),
            Badge.objects.filter(merchant=merchant).exists(),
        )
        widget_shapes.put((merchant.pk, cycle), shape)
    return shape


WIDGET_BADGES = 12


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def widget_lookup(merchant) -> tuple[str, dict]:
    """The widget's per-shopper SQL expression and its parameters (the contributor's `lookup`)."""
    cycle = current_cycle(merchant=merchant)
    teams, badges = _widget_shape(merchant, cycle)
    params = {"gamification_merchant": merchant.pk}
    if teams:
        params["gamification_cycle"] = cycle
    if badges:
        params["gamification_badges"] = WIDGET_BADGES
    return _widget_sql(teams=teams, badges=badges), params


def widget_contribution(*, merchant, customer, locale: str, looked_up=None) -> dict | None:
    """What the storefront widgets show a shopper: badges, streak, team rank (Chart.js line for
    the streak, bar for team ranks). `looked_up`: `widget_lookup`'s value, read with the shopper's
    row by the app proxy; without it, one query here. With storefront teams, one Redis round trip
    for the ranking and the shopper's team rank.

    The streak comes from its database row: read in the same statement as the shopper, it is
    never older than the `streak:` stream, which is appended after the row's transaction commits."""
    if customer is None:
        return None
    cycle = current_cycle(merchant=merchant)
    if looked_up is None:
        sql, params = widget_lookup(merchant)
        looked_up = shopper_expression_get(customer=customer, sql=sql, params=params)
    period, streak_row, membership, achievements = (_json(value) for value in _json(looked_up))
    achievements = sorted((_json(row) for row in achievements or []), key=lambda row: (row[5], row[0]), reverse=True)
    if streak_row is None:
        state = {"streak_count": 0, "longest_count": 0, "last_period_date": None}
    else:
        current_count, longest_count, last_period_date = streak_row
        state = {"streak_count": current_count, "longest_count": longest_count, "last_period_date": last_period_date}
    streak = _streak_state(merchant=merchant, period=period or StreakPeriod.MONTH, state=state)
    team, ranking = None, []
    if beta_feature_enabled_in_request(merchant, "team_leaderboards"):  # else no team ranks (same shape)
        top, placed = leaderboard_top_and_rank(
            merchant_id=merchant.pk, cycle=cycle, limit=5, team_id=membership[0] if membership else None
        )
        names = _names(merchant=merchant, team_ids=[team_id for team_id, _score in top], locale=locale)
        ranking = [
            {"rank": position, "team_id": team_id, "name": names.get(team_id, team_id), "score": score}
            for position, (team_id, score) in enumerate(top, start=1)
        ]
        if membership:
            team = {
                "team_id": membership[0],
                "name": rules.badge_name(_json(membership[1]), locale),
                "rank": placed[0] if placed else None,
                "score": placed[1] if placed else 0,
            }
    badges = [
        {
            "achievement_id": achievement_id,
            "badge_id": badge_id,
            "name": rules.badge_name(_json(badge), locale),
            "icon": icon,
            "streak_count": streak_count,
            "earned_at": datetime.fromisoformat(created_at).replace(tzinfo=UTC).isoformat(),
        }
        for achievement_id, badge_id, badge, icon, streak_count, created_at in achievements
    ]
    return {
        "dir": "rtl" if is_rtl(locale) else "ltr",
        "badges": badges,
        "streak": streak,
        "team": team,
        "teams": ranking,
        "cycle": cycle,
        "charts": {"teams": team_ranking_chart(ranking)},
    }
