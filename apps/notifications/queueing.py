"""Kick the relay without ever blocking the caller on a dead broker.

The outbox row in PostgreSQL is the truth; a kick only makes it go out sooner. When the broker
(Redis) is down the kick is dropped and the beat relay picks the row up once it is back.
"""

import logging

from apps.core.queueing import broker_health, enqueue_unless_broker_down

logger = logging.getLogger(__name__)


def relay_kick(countdown: float | None = None) -> bool:
    """Queue a relay run (now, or after `countdown` seconds); False when the broker is down."""
    from .tasks import notifications_relay_task

    return enqueue_unless_broker_down(notifications_relay_task, kwargs={}, countdown=countdown)


def send_enqueue(notification_ids: list[str]) -> bool:
    """Hand claimed notifications to a send task; False when the broker refused them."""
    from .tasks import notification_send_task

    if not broker_health.reachable():
        return False
    try:
        notification_send_task.apply_async(kwargs={"notification_ids": notification_ids}, retry=False)
        return True
    except Exception as exc:
        logger.warning(
            "%d notifications not queued (%s); released for the relay", len(notification_ids), type(exc).__name__
        )
        return False
