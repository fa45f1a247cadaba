"""Celery tasks of the outbox: the relay (beat and kicks) and the sender (E1: acks late,
requeued when a worker dies). Both are thin; the work is in apps.notifications.delivery."""

import logging

from celery import shared_task
from celery.signals import worker_process_shutdown
from django.conf import settings
from django.utils import timezone

from apps.core import tracking

from .delivery import next_pending_at, notifications_claim, notifications_deliver, notifications_release
from .models import State
from .queueing import relay_kick, send_enqueue

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def notifications_relay_task() -> int:
    """Claim due notifications and hand them to send tasks in chunks."""
    claimed = notifications_claim()
    size = max(1, settings.NOTIFICATIONS_SEND_CHUNK_SIZE)
    for start in range(0, len(claimed), size):
        chunk = claimed[start : start + size]
        if not send_enqueue(chunk):
            notifications_release(notification_ids=claimed[start:])
            return start
    if len(claimed) >= settings.NOTIFICATIONS_RELAY_BATCH_SIZE:
        relay_kick()  # more are due: keep going without waiting for beat
    return len(claimed)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def notification_send_task(*, notification_ids: list[str]) -> dict:
    """Send claimed notifications; kick the relay for the earliest one that has to wait."""
    states = notifications_deliver(notification_ids=notification_ids)
    outcome: dict[str, int] = {}
    for state in states.values():
        outcome[state] = outcome.get(state, 0) + 1
    waiting = [notification_id for notification_id, state in states.items() if state == State.PENDING]
    if waiting:
        due = next_pending_at(notification_ids=waiting)
        if due is not None:
            relay_kick(countdown=max(0.0, (due - timezone.now()).total_seconds()))
    return outcome


@worker_process_shutdown.connect
def _flush_analytics(**kwargs):
    """PostHog batches events in a background thread: send what is queued before exiting."""
    try:
        tracking.flush()
    except Exception:  # never keep a worker from shutting down
        logger.warning("PostHog flush at worker shutdown failed", exc_info=True)
