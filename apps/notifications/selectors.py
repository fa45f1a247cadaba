"""Reads of the notifications app. Callers are inside the merchant's scope."""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .catalogue import TYPES
from .models import Notification, NotificationPreference, State


def notification_preference_list(*, merchant) -> list[dict]:
    """Every (type, channel) the merchant can switch, with its current setting (on by default)."""
    stored = {(row.type, row.channel): row.enabled for row in NotificationPreference.objects.filter(merchant=merchant)}
    return [
        {
            "type": key,
            "label": str(notification_type.label),
            "channel": str(channel),
            "enabled": stored.get((key, channel), True),
        }
        for key, notification_type in TYPES.items()
        for channel in notification_type.channels
    ]


def notification_delivery_stats(*, merchant, days: int = 30) -> list[dict]:
    """Per type over the last `days`: how many were sent, failed, skipped and still waiting,
    and the delivery rate (sent / (sent + failed))."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        Notification.objects.filter(merchant=merchant, created_at__gte=since)
        .values("type")
        .annotate(
            total=Count("id"),
            sent=Count("id", filter=Q(state=State.SENT)),
            failed=Count("id", filter=Q(state=State.FAILED)),
            skipped=Count("id", filter=Q(state=State.SKIPPED)),
            waiting=Count("id", filter=Q(state__in=[State.PENDING, State.SENDING])),
        )
        .order_by("type")
    )
    stats = []
    for row in rows:
        finished = row["sent"] + row["failed"]
        notification_type = TYPES.get(row["type"])
        stats.append(
            {
                **row,
                "label": str(notification_type.label) if notification_type else row["type"],
                "delivery_rate": (row["sent"] / finished) if finished else None,
            }
        )
    return stats


def notification_failure_list(*, merchant, limit: int = 10) -> list[Notification]:
    """The latest failed notifications, with their reason (no recipient data)."""
    rows = list(
        Notification.objects.filter(merchant=merchant, state=State.FAILED)
        .only("id", "type", "channel", "last_error", "attempts", "updated_at")
        .order_by("-updated_at")[:limit]
    )
    for row in rows:
        row.label = str(TYPES[row.type].label) if row.type in TYPES else row.type
    return rows
