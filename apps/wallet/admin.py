"""Django admin: exports, passes (with their update state — failures are visible and can be
re-queued) and registered devices. Pass data and tokens are never shown."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from apps.core.tenancy import scopes_disabled

from .models import PushStatus, WalletDevice, WalletExport, WalletPass, WalletPassLog


class UnscopedAdmin(admin.ModelAdmin):
    def get_queryset(self, request):
        with scopes_disabled():
            return super().get_queryset(request).all()


@admin.register(WalletExport)
class WalletExportAdmin(UnscopedAdmin):
    list_display = ("id", "merchant", "customer", "wallet_type", "status", "error_code", "locale", "created_at")
    list_filter = ("wallet_type", "status")
    search_fields = ("id", "merchant__shop_domain", "customer__id")
    exclude = ("pass_data",)
    readonly_fields = ("merchant", "customer", "wallet_type", "status", "error_code", "locale", "serial_number")

    def has_add_permission(self, request):
        return False


@admin.register(WalletPass)
class WalletPassAdmin(UnscopedAdmin):
    list_display = ("id", "merchant", "customer", "wallet_type", "push_status", "push_attempts", "last_push_error",
                    "last_pushed_at", "updated_at")  # fmt: skip
    list_filter = ("push_status", "wallet_type")
    search_fields = ("id", "merchant__shop_domain", "customer__id")
    exclude = ("authentication_token",)
    readonly_fields = ("merchant", "customer", "wallet_type", "content_hash", "push_status", "push_attempts",
                       "last_push_error", "last_pushed_at")  # fmt: skip
    actions = ["retry_push"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Retry the update push"))
    def retry_push(self, request, queryset):
        from .tasks import wallet_passes_push_task

        with scopes_disabled():
            rows = list(queryset.values_list("merchant_id", "pk"))
            WalletPass.objects.filter(pk__in=[pk for _m, pk in rows]).update(
                push_status=PushStatus.PENDING, push_attempts=0
            )
        by_merchant: dict[str, list[str]] = {}
        for merchant_id, pk in rows:
            by_merchant.setdefault(merchant_id, []).append(pk)
        for merchant_id, pass_ids in by_merchant.items():
            wallet_passes_push_task.delay(merchant_id=merchant_id, pass_ids=pass_ids)
        messages.success(request, _("Queued %(count)s passes.") % {"count": len(rows)})


@admin.register(WalletDevice)
class WalletDeviceAdmin(UnscopedAdmin):
    list_display = ("id", "merchant", "wallet_pass", "device_library_identifier", "created_at")
    exclude = ("push_token",)


@admin.register(WalletPassLog)
class WalletPassLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "message")
