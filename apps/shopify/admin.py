"""Staff admin over the Shopify edge: the webhook inbox and reward redemptions, read-only.

Deliveries are written by Shopify and by the processing task only. A failed delivery shows
why (`last_error`); "Reprocess" puts it back to `received` and queues it. Bodies are order
and customer payloads (personal data): shown only with `core.view_customer_pii`, audited.

Redemptions are written by the redemption services only. "Retry issuing" queues another
attempt of a `pending` one (audited by the service); a `failed` one already gave its points
back, so it is left alone: the shopper redeems again.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin.base import MASK, EstimatedCountPaginator, MerchantFilter, ReadOnlyAdmin, has_pii_permission
from apps.core.audit import audit_record

from .models import RedemptionStatus, RewardRedemption, WebhookDelivery
from .rewards import reward_redemption_retry
from .webhooks.inbox import webhook_delivery_reprocess
from .webhooks.tasks import enqueue_delivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant", "topic", "status", "attempts", "triggered_at", "received_at", "last_error")
    list_filter = (MerchantFilter, "status", "topic")
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "webhook_id", "event_id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("-received_at",)
    sortable_by = ("received_at",)
    actions = ["reprocess"]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id",
                    "merchant",
                    "topic",
                    "status",
                    "attempts",
                    "last_error",
                    "webhook_id",
                    "event_id",
                    "api_version",
                    "triggered_at",
                    "received_at",
                    "processed_at",
                    "payload",
                )
            },
        )
    ]

    @admin.display(description=_("payload"))
    def payload(self, obj):
        from apps.core.admin.loyalty import pretty_json

        return pretty_json(obj.body)

    @admin.display(description=_("payload"))
    def masked_payload(self, obj):
        return MASK

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if has_pii_permission(request):
            return fieldsets
        return [
            (title, {**options, "fields": tuple("masked_payload" if f == "payload" else f for f in options["fields"])})
            for title, options in fieldsets
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and has_pii_permission(request):
            audit_record(
                merchant=obj.merchant,
                actor=request.user,
                action="webhook_payload_viewed",
                target=obj,
                metadata={"source": "admin_detail"},
            )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def has_reprocess_permission(self, request):
        return (
            request.user.is_active and request.user.is_staff and request.user.has_perm("shopify.change_webhookdelivery")
        )

    @admin.action(description=_("Reprocess the selected deliveries"), permissions=["reprocess"])
    def reprocess(self, request, queryset):
        queued = 0
        for delivery in queryset.select_related("merchant")[:500]:
            if webhook_delivery_reprocess(merchant=delivery.merchant, delivery_id=delivery.pk, actor=request.user):
                enqueue_delivery(merchant_id=delivery.merchant_id, delivery_id=delivery.pk)
                queued += 1
        self.message_user(
            request,
            ngettext("%(count)d delivery queued for processing.", "%(count)d deliveries queued for processing.", queued)
            % {"count": queued},
            messages.SUCCESS,
        )


@admin.register(RewardRedemption)
class RewardRedemptionAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant", "customer", "reward", "status", "code", "attempts", "created_at", "issued_at")
    list_filter = (MerchantFilter, "status")
    list_select_related = ("merchant", "customer", "reward")
    exact_search_fields = ("id", "code", "customer__id", "shopify_discount_id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ("-created_at",)
    sortable_by = ("created_at",)
    actions = ["retry_issuing"]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id",
                    "merchant",
                    "customer",
                    "reward",
                    "transaction",
                    "status",
                    "code",
                    "shopify_discount_id",
                    "attempts",
                    "last_error",
                    "locale",
                    "expires_at",
                    "created_at",
                    "updated_at",
                    "issued_at",
                )
            },
        )
    ]

    def has_retry_issuing_permission(self, request):
        return (
            request.user.is_active
            and request.user.is_staff
            and request.user.has_perm("shopify.change_rewardredemption")
        )

    @admin.action(description=_("Retry issuing the selected redemptions"), permissions=["retry_issuing"])
    def retry_issuing(self, request, queryset):
        queued = skipped = 0
        rows = queryset.filter(status__in=[RedemptionStatus.PENDING, RedemptionStatus.FAILED]).select_related(
            "merchant"
        )
        for redemption in rows[:500]:
            if reward_redemption_retry(merchant=redemption.merchant, redemption_id=redemption.pk, actor=request.user):
                queued += 1
            else:
                skipped += 1
        self.message_user(
            request,
            ngettext("%(count)d redemption queued for issuing.", "%(count)d redemptions queued for issuing.", queued)
            % {"count": queued},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d redemption not queued: failed ones already returned their points, "
                    "or the broker is unreachable (the sweep queues pending ones).",
                    "%(count)d redemptions not queued: failed ones already returned their points, "
                    "or the broker is unreachable (the sweep queues pending ones).",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
