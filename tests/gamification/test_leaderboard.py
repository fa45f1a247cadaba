"""The team leaderboard's sorted set: kept in step after commit, rebuilt identically from
PostgreSQL when Redis lost it, answered from PostgreSQL when Redis is down."""

from itertools import pairwise

from apps.core.redis import get_redis
from apps.core.services import points_earn
from apps.core.tenancy import merchant_scope
from apps.gamification import selectors
from apps.gamification.leaderboard import leaderboard_key
from apps.gamification.models import TeamMembership
from tests.factories import CustomerFactory

from .conftest import make_team

CYCLE = "2026-11"


def _league(merchant, django_capture_on_commit_callbacks, teams=6):
    """Teams with members who earn points (ties included), through real ledger writes."""
    made = [make_team(merchant, CYCLE, f"Team {index}") for index in range(teams)]
    with django_capture_on_commit_callbacks(execute=True), merchant_scope(merchant):
        for index, team in enumerate(made):
            for member in range(2):
                customer = CustomerFactory(merchant=merchant)
                TeamMembership.objects.create(merchant=merchant, customer=customer, team=team, cycle=CYCLE)
                points = (index % 3) * 10 + member  # teams 0/3, 1/4, 2/5 tie
                if points:
                    points_earn(
                        merchant=merchant, customer=customer, points=points, idempotency_key=f"{team.pk}:{member}"
                    )
    return made


def _ranking(merchant, limit=10):
    with merchant_scope(merchant):
        return selectors.team_ranking(merchant=merchant, cycle=CYCLE, limit=limit)


def test_scores_reach_redis_after_commit_in_database_order(
    merchant, other_merchant, django_capture_on_commit_callbacks
):
    teams = _league(merchant, django_capture_on_commit_callbacks)
    foreign = make_team(other_merchant["merchant"], CYCLE, "Team 0")

    ranking = _ranking(merchant)

    scores = [row["score"] for row in ranking]
    assert scores == sorted(scores, reverse=True) and scores[0] == 41
    assert {row["team_id"] for row in ranking} == {team.pk for team in teams}
    # Ties: higher team id first, as ZREVRANGE orders equal scores.
    for first, second in pairwise(ranking):
        if first["score"] == second["score"]:
            assert first["team_id"] > second["team_id"]
    assert get_redis().zcard(leaderboard_key(merchant.pk, CYCLE)) == len(teams)
    assert foreign.pk not in {row["team_id"] for row in ranking}


def test_a_flushed_redis_is_rebuilt_identically(merchant, django_capture_on_commit_callbacks):
    teams = _league(merchant, django_capture_on_commit_callbacks)
    member = TeamMembership.objects.filter(team=teams[2]).first().customer
    before = _ranking(merchant)
    with merchant_scope(merchant):
        rank_before = selectors.team_rank_for_customer(merchant=merchant, customer=member, cycle=CYCLE)

    get_redis().flushdb()
    with merchant_scope(merchant):
        rank_after = selectors.team_rank_for_customer(merchant=merchant, customer=member, cycle=CYCLE)
    after = _ranking(merchant)

    assert after == before and rank_after == rank_before
    assert get_redis().zcard(leaderboard_key(merchant.pk, CYCLE)) == len(teams)


def test_a_write_after_redis_lost_the_set_rebuilds_it_whole(merchant, django_capture_on_commit_callbacks):
    teams = _league(merchant, django_capture_on_commit_callbacks)
    get_redis().flushdb()
    member = TeamMembership.objects.filter(team=teams[0]).first().customer

    with django_capture_on_commit_callbacks(execute=True), merchant_scope(merchant):
        points_earn(merchant=merchant, customer=member, points=100, idempotency_key="late")

    stored = dict(get_redis().zrange(leaderboard_key(merchant.pk, CYCLE), 0, -1, withscores=True))
    assert len(stored) == len(teams)  # not just the team that scored
    assert stored[teams[0].pk] == 101
    assert _ranking(merchant, limit=1)[0]["team_id"] == teams[0].pk


def test_with_redis_down_rankings_come_from_postgresql_in_the_same_order(
    merchant, settings, django_capture_on_commit_callbacks
):
    teams = _league(merchant, django_capture_on_commit_callbacks)
    member = TeamMembership.objects.filter(team=teams[4]).first().customer
    before = _ranking(merchant)
    with merchant_scope(merchant):
        rank_before = selectors.team_rank_for_customer(merchant=merchant, customer=member, cycle=CYCLE)

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    with merchant_scope(merchant):
        rank_down = selectors.team_rank_for_customer(merchant=merchant, customer=member, cycle=CYCLE)
    assert _ranking(merchant) == before and rank_down == rank_before


def test_a_cycle_without_teams_is_not_rebuilt_on_every_read(merchant, django_assert_num_queries):
    with merchant_scope(merchant):
        assert selectors.team_ranking(merchant=merchant, cycle="2026-11") == []  # first read: rebuilt
        with django_assert_num_queries(0):
            for _ in range(3):
                assert selectors.team_ranking(merchant=merchant, cycle="2026-11") == []
    get_redis().flushdb()
    with merchant_scope(merchant), django_assert_num_queries(2):  # lost: rebuilt from PostgreSQL
        assert selectors.team_ranking(merchant=merchant, cycle="2026-11") == []
