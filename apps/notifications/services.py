"""Writes of the notifications app: queue a notification, merchant preferences and credentials,
and staff's retry of a failed notification."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import ApplicationError
from apps.core.locales import DEFAULT_LOCALE, normalize_locale

from .catalogue import CUSTOMER, STAFF, TYPES
from .models import CHANNEL_PROVIDER, Notification, NotificationPreference, NotificationSettings, State
from .providers.slack import webhook_url_is_allowed
from .queueing import relay_kick
from .rendering import placeholders


class UnknownNotificationType(ApplicationError):
    code = "unknown_notification_type"
    status = 400
    default_message = _("This notification type does not exist.")


class InvalidSlackWebhook(ApplicationError):
    code = "invalid_slack_webhook"
    status = 400
    default_message = _("Enter a Slack incoming webhook URL starting with https://hooks.slack.com/services/.")


def _notification_type(type: str):
    notification_type = TYPES.get(type)
    if notification_type is None:
        raise UnknownNotificationType()
    return notification_type


def _outbox_rows(
    *,
    merchant,
    notification_type,
    idempotency_key: str,
    context: dict | None,
    customer=None,
    staff=None,
    channels: tuple[str, ...] | None = None,
    locale: str | None = None,
    now,
) -> list[Notification]:
    """The unsaved outbox rows of one notification: one per channel of its type."""
    type = notification_type.key
    context = dict(context or {})
    missing = placeholders(notification_type) - set(context) - {"shop_name"}
    if missing:
        raise ValueError(f"notify({type}) needs context for {sorted(missing)}")
    context.setdefault("shop_name", merchant.name)
    if notification_type.audience == CUSTOMER and customer is None:
        raise ValueError(f"notify({type}) needs a customer")
    if notification_type.audience == STAFF and staff is None:
        raise ValueError(f"notify({type}) needs a staff member")
    recipient_locale = (
        normalize_locale(locale)
        or normalize_locale(getattr(customer, "locale", None))
        or merchant.primary_locale
        or DEFAULT_LOCALE
    )
    return [
        Notification(
            merchant=merchant,
            customer=customer if notification_type.audience == CUSTOMER else None,
            staff=staff if notification_type.audience == STAFF else None,
            channel=channel,
            provider=CHANNEL_PROVIDER[channel],
            type=type,
            locale=recipient_locale,
            context=context,
            idempotency_key=f"{idempotency_key}:{channel}"[:255],
            next_attempt_at=now,
        )
        for channel in (channels or notification_type.channels)
        if channel in notification_type.channels
    ]


def _outbox_insert(rows: list[Notification]) -> None:
    # ON CONFLICT DO NOTHING: a duplicate never aborts the caller's transaction.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    transaction.on_commit(relay_kick)


def notify(
    *,
    merchant,
    type: str,
    idempotency_key: str,
    context: dict | None = None,
    customer=None,
    staff=None,
    channels: tuple[str, ...] | None = None,
    locale: str | None = None,
) -> list[Notification]:
    """Queue `type` for its recipient on each of its channels, in the caller's transaction.

    Safe to call twice with the same idempotency key: the second call adds nothing (one row per
    (key, channel) and merchant). Sending happens after commit; consent, addresses and the
    merchant's preferences are checked then, and a row that cannot be sent ends `skipped`.
    """
    rows = _outbox_rows(
        merchant=merchant,
        notification_type=_notification_type(type),
        idempotency_key=idempotency_key,
        context=context,
        customer=customer,
        staff=staff,
        channels=channels,
        locale=locale,
        now=timezone.now(),
    )
    _outbox_insert(rows)
    stored = {
        row.idempotency_key: row
        for row in Notification.objects.filter(merchant=merchant, idempotency_key__in=[r.idempotency_key for r in rows])
    }
    return [stored[row.idempotency_key] for row in rows]  # in the type's channel order


def notify_many(*, merchant, type: str, items) -> None:
    """`notify` for many customers at once — `items` are (customer, idempotency key, context) —
    with the same rows, one INSERT and one relay kick: for batch writers (a burst of orders
    earning badges or streak steps) that cannot afford a statement per recipient."""
    notification_type = _notification_type(type)
    now = timezone.now()
    rows = [
        row
        for customer, idempotency_key, context in items
        for row in _outbox_rows(
            merchant=merchant,
            notification_type=notification_type,
            idempotency_key=idempotency_key,
            context=context,
            customer=customer,
            now=now,
        )
    ]
    if rows:
        _outbox_insert(rows)


def notification_preferences_set(*, merchant, actor, preferences: list[dict]) -> list[NotificationPreference]:
    """Switch notification types on or off per channel: [{"type", "channel", "enabled"}]."""
    with transaction.atomic():
        saved = []
        for item in preferences:
            notification_type = TYPES.get(item["type"])
            if notification_type is None or item["channel"] not in notification_type.channels:
                raise UnknownNotificationType()
            preference, _created = NotificationPreference.objects.update_or_create(
                merchant=merchant,
                type=item["type"],
                channel=item["channel"],
                defaults={"enabled": item["enabled"]},
            )
            saved.append(preference)
        audit_record(
            merchant=merchant,
            actor=actor,
            action="notification_preferences_updated",
            metadata={"changes": [{k: item[k] for k in ("type", "channel", "enabled")} for item in preferences]},
        )
    return saved


SECRET_FIELDS = ("klaviyo_private_key", "postscript_api_key", "slack_webhook_url")


def notification_settings_update(*, merchant, actor, **changes) -> NotificationSettings:
    """Save provider credentials (encrypted at rest); an empty string disconnects a provider."""
    webhook = changes.get("slack_webhook_url")
    if webhook and not webhook_url_is_allowed(webhook):
        raise InvalidSlackWebhook()
    with transaction.atomic():
        row, _created = NotificationSettings.objects.select_for_update().get_or_create(merchant=merchant)
        for name, value in changes.items():
            setattr(row, name, value)
        row.save()
        audit_record(
            merchant=merchant,
            actor=actor,
            action="notification_settings_updated",
            target=row,
            # Which credentials changed, never their values.
            metadata={"fields": sorted(changes)},
        )
    return row


def notification_retry(*, merchant, notification_id: str, actor=None) -> bool:
    """Put a failed notification back to `pending` with a fresh set of attempts (admin action)."""
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update()
            .filter(merchant=merchant, pk=notification_id, state=State.FAILED)
            .first()
        )
        if row is None:
            return False
        previous_error = row.last_error
        row.state = State.PENDING
        row.attempts = 0
        row.next_attempt_at = timezone.now()
        row.lease_until = None
        row.last_error = ""
        row.save(update_fields=["state", "attempts", "next_attempt_at", "lease_until", "last_error", "updated_at"])
        audit_record(
            merchant=merchant,
            actor=actor,
            action="notification_retried",
            target=row,
            metadata={"type": row.type, "channel": row.channel, "previous_error": previous_error},
        )
        transaction.on_commit(relay_kick)
    return True
