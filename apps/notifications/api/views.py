"""Merchant API of notifications: which types go out on which channel, the provider
credentials (write-only), and delivery figures per type."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer

from .. import selectors, services
from ..models import Channel, NotificationSettings

# Notifications are part of how the shop talks to its shoppers, like the storefront widgets.
NOTIFICATIONS_SCOPE = "admin:frontend"


class NotificationPreferencesApi(MerchantApiView):
    """Every notification type per channel, on or off; PUT switches some of them."""

    required_scope = NOTIFICATIONS_SCOPE

    class PreferenceSerializer(StrictSerializer):
        type = serializers.CharField(max_length=48)
        channel = serializers.ChoiceField(choices=Channel.choices)
        enabled = serializers.BooleanField()

    class InputSerializer(StrictSerializer):
        preferences = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=100)
        locale = LocaleField()

        def validate_preferences(self, value):
            items = []
            for item in value:
                serializer = NotificationPreferencesApi.PreferenceSerializer(data=item)
                serializer.is_valid(raise_exception=True)
                items.append(serializer.validated_data)
            return items

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return self.ok(preferences=selectors.notification_preference_list(merchant=request.merchant))

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        data = self.validated(self.InputSerializer, request.data)
        services.notification_preferences_set(
            merchant=request.merchant, actor=request.staff, preferences=data["preferences"]
        )
        return self.ok(preferences=selectors.notification_preference_list(merchant=request.merchant))


def _connected(row: NotificationSettings | None) -> dict:
    """Which providers are connected — never the secrets themselves."""
    return {
        "klaviyo": bool(row and row.klaviyo_private_key),
        "postscript": bool(row and row.postscript_api_key),
        "slack": bool(row and (row.slack_webhook_url or row.slack_channel_id)),
    }


class NotificationSettingsApi(MerchantApiView):
    """Provider credentials, stored encrypted. GET says which are connected; PUT sets them."""

    required_scope = NOTIFICATIONS_SCOPE

    class InputSerializer(StrictSerializer):
        klaviyo_private_key = serializers.CharField(max_length=200, required=False, allow_blank=True)
        postscript_api_key = serializers.CharField(max_length=200, required=False, allow_blank=True)
        slack_webhook_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
        slack_channel_id = serializers.RegexField(r"^[A-Z0-9]{0,32}$", required=False, allow_blank=True)
        locale = LocaleField()

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        row = NotificationSettings.objects.filter(merchant=request.merchant).first()
        return self.ok(connected=_connected(row))

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        data = self.validated(self.InputSerializer, request.data)
        data.pop("locale", None)
        row = services.notification_settings_update(merchant=request.merchant, actor=request.staff, **data)
        return self.ok(connected=_connected(row))


class NotificationStatsApi(MerchantApiView):
    """Delivery figures per notification type over the last 30 days, and the latest failures."""

    required_scope = "admin:analytics"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        failures = selectors.notification_failure_list(merchant=request.merchant)
        return self.ok(
            types=selectors.notification_delivery_stats(merchant=request.merchant),
            failures=[
                {
                    "id": row.pk,
                    "type": row.type,
                    "channel": row.channel,
                    "attempts": row.attempts,
                    "last_error": row.last_error,
                    "failed_at": row.updated_at,
                }
                for row in failures
            ],
        )
