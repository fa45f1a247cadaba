"""The notification outbox, each merchant's provider credentials and per-type preferences.

A `Notification` row is written in the same transaction as the change it reports (E3); the
relay hands committed rows to Celery. Its fate is always visible: `pending` (waiting for its
first attempt, a retry, or a closed breaker) → `sending` (claimed by a worker until
`lease_until`) → `sent` | `failed` (terminal, the reason in `last_error`) | `skipped` (no
consent, no address, or the type switched off — the reason in `last_error`).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField
from apps.core.locales import LOCALE_CHOICES
from apps.core.models import Customer, Merchant, StaffMember, TimestampedModel
from apps.core.tenancy import TenantManager


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    SLACK = "slack", _("Slack")


class Provider(models.TextChoices):
    KLAVIYO = "klaviyo", "Klaviyo"
    POSTSCRIPT = "postscript", "Postscript"
    SLACK = "slack", "Slack"


CHANNEL_PROVIDER = {Channel.EMAIL: Provider.KLAVIYO, Channel.SMS: Provider.POSTSCRIPT, Channel.SLACK: Provider.SLACK}


class State(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class Notification(models.Model):
    """One message to one recipient through one channel, and what became of it."""

    id = PrefixedIdField(prefix="ntf")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Shoppers get email and SMS; merchant-facing messages go to a staff member or to Slack.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    staff = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    type = models.CharField(max_length=48)
    locale = models.CharField(max_length=8, choices=LOCALE_CHOICES)
    # The locale the text was rendered in, and why when it differs (no translation).
    rendered_locale = models.CharField(max_length=8, blank=True, default="")
    locale_fallback = models.CharField(max_length=64, blank=True, default="")
    context = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    provider_message_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "notifications"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "idempotency_key"], name="notifications_idempotency_unique"),
            models.CheckConstraint(condition=Q(state__in=State.values), name="notifications_state_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="notifications_channel_valid"),
        ]
        indexes = [
            # The relay's claim: due pending rows, and sending rows whose lease ran out.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="idx_ntf_due",
            ),
            models.Index(fields=["lease_until"], condition=Q(state="sending"), name="idx_ntf_leased"),
            # Dashboard delivery rates and admin lists of one shop.
            models.Index(fields=["merchant", "type", "state"], name="idx_ntf_merchant_type_state"),
            models.Index(fields=["merchant", "-created_at"], name="idx_ntf_merchant_created"),
            models.Index(fields=["customer"], condition=Q(customer__isnull=False), name="idx_ntf_customer"),
            models.Index(fields=["staff"], condition=Q(staff__isnull=False), name="idx_ntf_staff"),
        ]

    def __str__(self):
        return f"{self.type} via {self.channel} ({self.state})"


class NotificationSettings(TimestampedModel):
    """A merchant's provider credentials, encrypted at rest (D5). Blank: that channel is off."""

    id = PrefixedIdField(prefix="nset")
    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="notification_settings")
    klaviyo_private_key = EncryptedTextField(blank=True, default="")
    postscript_api_key = EncryptedTextField(blank=True, default="")
    slack_webhook_url = EncryptedTextField(blank=True, default="")
    slack_channel_id = models.CharField(max_length=32, blank=True, default="")

    objects = TenantManager()

    class Meta:
        db_table = "notification_settings"
        verbose_name_plural = "notification settings"

    def __str__(self):
        return f"Notification settings of {self.merchant_id}"


class NotificationPreference(TimestampedModel):
    """A notification type switched on or off for one channel by the merchant (on by default)."""

    id = PrefixedIdField(prefix="npref")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=48)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField(default=True)

    objects = TenantManager()

    class Meta:
        db_table = "notification_preferences"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "type", "channel"], name="notification_preferences_unique"),
        ]

    def __str__(self):
        return f"{self.type}/{self.channel}: {'on' if self.enabled else 'off'}"
