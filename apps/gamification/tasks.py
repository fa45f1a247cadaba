"""Celery tasks of advanced gamification: thin, merchant id in, one service call in its scope."""

from celery import shared_task

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope

from . import selectors, services
from .awarding import gamification_flow_triggers_task  # noqa: F401  (registered with Celery here too)
from .leaderboard import leaderboard_rebuild


def _merchant(merchant_id: str) -> Merchant | None:
    return Merchant.objects.filter(pk=merchant_id, is_installed=True).first()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def gamification_nightly_task(*, merchant_id: str) -> dict | None:
    """Reset broken streaks and rebuild the current cycle's sorted set from PostgreSQL."""
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    with merchant_scope(merchant):
        reset = services.streaks_reset_broken(merchant=merchant)
        cycle = selectors.current_cycle(merchant=merchant)
        teams = leaderboard_rebuild(merchant_id=merchant.pk, cycle=cycle)
    return {"streaks_reset": reset, "cycle": cycle, "teams": len(teams)}


@shared_task(acks_late=True)
def gamification_nightly_all_task() -> int:
    """Queue the nightly task of every installed shop."""
    ids = list(Merchant.objects.filter(is_installed=True).values_list("pk", flat=True))
    for merchant_id in ids:
        gamification_nightly_task.delay(merchant_id=merchant_id)
    return len(ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def badge_backfill_task(*, merchant_id: str, badge_id: str) -> int | None:
    """Award a new or edited badge to the customers who already qualify."""
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    with merchant_scope(merchant):
        return services.badge_backfill(merchant=merchant, badge_id=badge_id)
