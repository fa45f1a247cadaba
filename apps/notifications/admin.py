"""Staff admin of the outbox: every notification's fate, filterable, with a retry action.

Rows are written by the notification services and the sender only (read-only here). The
recipient shows as an id; the rendered text is never stored, so no personal data shows beyond
what the customer admin already masks. "Retry" puts failed rows back to `pending` with a fresh
set of attempts (audited by the service) and kicks the relay.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin.base import EstimatedCountPaginator, MerchantFilter, ReadOnlyAdmin

from .models import Notification, NotificationPreference, NotificationSettings, State
from .services import notification_retry


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "merchant",
        "type",
        "channel",
        "provider",
        "state",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    )
    list_filter = (MerchantFilter, "state", "channel", "provider", "type")
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "idempotency_key", "customer__id", "provider_message_id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("-created_at",)
    sortable_by = ("created_at",)
    actions = ["retry"]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id",
                    "merchant",
                    "type",
                    "channel",
                    "provider",
                    "state",
                    "attempts",
                    "last_error",
                    "next_attempt_at",
                    "lease_until",
                    "provider_message_id",
                    "customer",
                    "staff",
                    "locale",
                    "rendered_locale",
                    "locale_fallback",
                    "idempotency_key",
                    "created_at",
                    "updated_at",
                    "sent_at",
                )
            },
        )
    ]

    def has_retry_permission(self, request):
        return (
            request.user.is_active
            and request.user.is_staff
            and request.user.has_perm("notifications.change_notification")
        )

    @admin.action(description=_("Retry the selected failed notifications"), permissions=["retry"])
    def retry(self, request, queryset):
        retried = 0
        for row in queryset.filter(state=State.FAILED).select_related("merchant")[:500]:
            retried += notification_retry(merchant=row.merchant, notification_id=row.pk, actor=request.user)
        self.message_user(
            request,
            ngettext(
                "%(count)d notification queued to be sent again.",
                "%(count)d notifications queued to be sent again.",
                retried,
            )
            % {"count": retried},
            messages.SUCCESS,
        )


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "type", "channel", "enabled", "updated_at")
    list_filter = (MerchantFilter, "channel", "enabled")
    list_select_related = ("merchant",)
    fieldsets = [(None, {"fields": ("merchant", "type", "channel", "enabled", "created_at", "updated_at")})]


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(ReadOnlyAdmin):
    """Which providers a merchant connected; the secrets themselves are never shown."""

    list_display = ("merchant", "klaviyo_connected", "postscript_connected", "slack_connected", "updated_at")
    list_filter = (MerchantFilter,)
    list_select_related = ("merchant",)
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "merchant",
                    "klaviyo_connected",
                    "postscript_connected",
                    "slack_connected",
                    "slack_channel_id",
                    "updated_at",
                )
            },
        )
    ]

    @admin.display(description=_("Klaviyo connected"), boolean=True)
    def klaviyo_connected(self, obj):
        return bool(obj.klaviyo_private_key)

    @admin.display(description=_("Postscript connected"), boolean=True)
    def postscript_connected(self, obj):
        return bool(obj.postscript_api_key)

    @admin.display(description=_("Slack connected"), boolean=True)
    def slack_connected(self, obj):
        return bool(obj.slack_webhook_url or obj.slack_channel_id)
