"""Django admin: LoyalNest Collective members with status and beta-feature filters, the
community's participation and beta adoption above the list, and a retry of stuck invites."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from apps.core.tenancy import scopes_disabled

from .catalogue import BETA_FEATURES
from .models import MemberStatus, SlackCommunityMember
from .selectors import slack_community_analytics


class BetaFeatureFilter(admin.SimpleListFilter):
    title = _("beta feature")
    parameter_name = "beta_feature"

    def lookups(self, request, model_admin):
        return [(key, feature.label) for key, feature in BETA_FEATURES.items()]

    def queryset(self, request, queryset):
        if self.value() in BETA_FEATURES:
            return queryset.filter(**{f"beta_features__{self.value()}": True})
        return queryset


@admin.register(SlackCommunityMember)
class SlackCommunityMemberAdmin(admin.ModelAdmin):
    change_list_template = "admin/slack_community/change_list.html"
    list_display = ("community_id", "merchant", "slack_user_id", "status", "beta_list", "locale", "last_error",
                    "created_at")  # fmt: skip
    list_filter = ("status", BetaFeatureFilter, "locale", "merchant__is_installed")
    search_fields = ("community_id", "slack_user_id", "merchant__shop_domain")
    readonly_fields = ("community_id", "merchant", "slack_user_id", "staff", "invite_attempts", "last_error",
                       "joined_at", "left_at", "created_at", "updated_at")  # fmt: skip
    actions = ["retry_invite"]

    def get_queryset(self, request):
        with scopes_disabled():
            return super().get_queryset(request).select_related("merchant").all()

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("Beta features"))
    def beta_list(self, obj):
        return ", ".join(sorted(key for key, value in (obj.beta_features or {}).items() if value is True)) or "—"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "community_analytics": slack_community_analytics()}
        return super().changelist_view(request, extra_context=extra_context)

    @admin.action(description=_("Retry the Slack invite"))
    def retry_invite(self, request, queryset):
        from .tasks import slack_community_invite_task

        with scopes_disabled():
            rows = list(queryset.filter(status=MemberStatus.INVITED).values_list("merchant_id", "pk"))
        for merchant_id, community_id in rows:
            slack_community_invite_task.delay(merchant_id=merchant_id, community_id=community_id)
        messages.success(request, _("Queued %(count)s invites.") % {"count": len(rows)})
