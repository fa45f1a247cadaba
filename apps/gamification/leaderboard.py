"""Team rankings in the Redis sorted set `team_leaderboard:{merchant_id}:{cycle}`.

PostgreSQL (`team_leaderboards`) is the truth. After every commit that changes scores, the
changed teams' committed scores are written to the sorted set (ZADD of absolute values, so a
replay converges). A missing key means Redis lost it (restart, flush, eviction): the next write
or read rebuilds it from the database with every team of the cycle. With Redis down, reads are
answered from PostgreSQL in the same order.

Order: score descending, then team id descending — what ZREVRANGE does for equal scores, and
what the database fallback does, so both give identical rankings.
"""

import logging

import redis
from django.db import transaction

from apps.core.redis import get_redis
from apps.core.tenancy import scopes_disabled

from .models import Team, TeamLeaderboard

logger = logging.getLogger(__name__)


def leaderboard_key(merchant_id: str, cycle: str) -> str:
    return f"team_leaderboard:{merchant_id}:{cycle}"


# Redis keeps no empty sorted set: a cycle without scores would look "lost" and be rebuilt from
# PostgreSQL on every read. The rebuild leaves this marker, so such a board reads as empty for a
# while instead.
BUILT_MARKER_SECONDS = 300


def _built_marker(key: str) -> str:
    return f"{key}:built"


def scores_from_database(*, merchant_id: str, cycle: str) -> dict[str, int]:
    """Every team of the cycle with its score (0 for teams without a row yet)."""
    with scopes_disabled():
        scores = dict.fromkeys(
            Team.objects.filter(merchant_id=merchant_id, cycle=cycle).values_list("pk", flat=True), 0
        )
        scores.update(
            TeamLeaderboard.objects.filter(merchant_id=merchant_id, cycle=cycle).values_list("team_id", "score")
        )
    return scores


def ranking_from_scores(scores: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def leaderboard_rebuild(*, merchant_id: str, cycle: str, client=None) -> dict[str, int]:
    """Replace the sorted set with the database's scores (atomically: MULTI/EXEC)."""
    scores = scores_from_database(merchant_id=merchant_id, cycle=cycle)
    client = client or get_redis()
    key = leaderboard_key(merchant_id, cycle)
    pipeline = client.pipeline(transaction=True)
    pipeline.delete(key)
    if scores:
        pipeline.zadd(key, scores)
    pipeline.set(_built_marker(key), "1", ex=BUILT_MARKER_SECONDS)
    pipeline.execute()
    return scores


def leaderboard_refresh(*, merchant_id: str, cycle: str, team_ids: list[str]) -> None:
    """Write the committed scores of `team_ids` to the sorted set (rebuild it when missing)."""
    try:
        client = get_redis()
        key = leaderboard_key(merchant_id, cycle)
        if not client.exists(key):  # writes rebuild whenever the set itself is missing
            leaderboard_rebuild(merchant_id=merchant_id, cycle=cycle, client=client)
            return
        with scopes_disabled():
            scores = dict(
                TeamLeaderboard.objects.filter(merchant_id=merchant_id, cycle=cycle, team_id__in=team_ids).values_list(
                    "team_id", "score"
                )
            )
        if scores:
            client.zadd(key, scores)
    except redis.RedisError as exc:
        # The next read after Redis is back finds the key missing or stale-but-present; the
        # nightly task rebuilds every current cycle.
        logger.warning("team leaderboard refresh skipped: %s", type(exc).__name__)


def leaderboard_refresh_on_commit(*, merchant_id: str, changed: dict[str, set[str]]) -> None:
    """After commit, refresh each cycle's changed teams (cycle -> team ids)."""
    if not changed:
        return

    def refresh():
        for cycle, team_ids in changed.items():
            leaderboard_refresh(merchant_id=merchant_id, cycle=cycle, team_ids=sorted(team_ids))

    transaction.on_commit(refresh)


def leaderboard_remove_on_commit(*, merchant_id: str, cycle: str, team_id: str) -> None:
    def remove():
        try:
            get_redis().zrem(leaderboard_key(merchant_id, cycle), team_id)
        except redis.RedisError as exc:
            logger.warning("team leaderboard removal skipped: %s", type(exc).__name__)

    transaction.on_commit(remove)


def leaderboard_top(*, merchant_id: str, cycle: str, limit: int) -> list[tuple[str, int]]:
    """The top `limit` (team id, score), from Redis, rebuilt when lost, PostgreSQL when down."""
    return leaderboard_top_and_rank(merchant_id=merchant_id, cycle=cycle, limit=limit, team_id=None)[0]


def leaderboard_top_and_rank(
    *, merchant_id: str, cycle: str, limit: int, team_id: str | None
) -> tuple[list[tuple[str, int]], tuple[int, int] | None]:
    """`leaderboard_top` and, for `team_id`, `leaderboard_rank` in one Redis round trip."""
    key = leaderboard_key(merchant_id, cycle)
    try:
        client = get_redis()
        pipeline = client.pipeline(transaction=False)
        pipeline.exists(key, _built_marker(key))
        pipeline.zrevrange(key, 0, limit - 1, withscores=True)
        if team_id is not None:
            pipeline.zrevrank(key, team_id)
            pipeline.zscore(key, team_id)
        exists, top, *placed = pipeline.execute()
        if exists:
            rank = None
            if team_id is not None and placed[0] is not None:
                rank = (placed[0] + 1, int(placed[1]))
            return [(team, int(score)) for team, score in top], rank
        scores = leaderboard_rebuild(merchant_id=merchant_id, cycle=cycle, client=client)
    except redis.RedisError as exc:
        logger.warning("team leaderboard read fell back to the database: %s", type(exc).__name__)
        scores = scores_from_database(merchant_id=merchant_id, cycle=cycle)
    ranking = ranking_from_scores(scores)
    rank = next(
        ((position, score) for position, (candidate, score) in enumerate(ranking, start=1) if candidate == team_id),
        None,
    )
    return ranking[:limit], rank


def leaderboard_rank(*, merchant_id: str, cycle: str, team_id: str) -> tuple[int, int] | None:
    """(1-based rank, score) of one team, or None when the team has no place in the cycle."""
    key = leaderboard_key(merchant_id, cycle)
    try:
        client = get_redis()
        pipeline = client.pipeline(transaction=False)
        pipeline.exists(key, _built_marker(key))
        pipeline.zrevrank(key, team_id)
        pipeline.zscore(key, team_id)
        exists, rank, score = pipeline.execute()
        if exists:
            return None if rank is None else (rank + 1, int(score))
        scores = leaderboard_rebuild(merchant_id=merchant_id, cycle=cycle, client=client)
    except redis.RedisError as exc:
        logger.warning("team rank read fell back to the database: %s", type(exc).__name__)
        scores = scores_from_database(merchant_id=merchant_id, cycle=cycle)
    for position, (candidate, score) in enumerate(ranking_from_scores(scores), start=1):
        if candidate == team_id:
            return position, score
    return None
