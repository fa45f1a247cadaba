"""Staff admin of the referral program (the seeds' Admin Module, US-AM9): find a referral by
code or shop, complete, expire or grant its reward by hand. Every action goes through a
service that writes the audit row with the staff user; each needs its own permission."""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin.base import MerchantFilter, ReadOnlyAdmin

from .models import MerchantReferral, MerchantReferralLink, MerchantReferralReward, ReferralStatus, RewardStatus
from .rewards import merchant_referral_reward_retry, merchant_referral_rewards_grant
from .services import InvalidTransition, merchant_referral_complete, merchant_referral_expire

ACTION_LIMIT = 200


def _allowed(request, permission: str) -> bool:
    user = request.user
    return user.is_active and user.is_staff and user.has_perm(f"merchant_referrals.{permission}")


def _report(model_admin, request, message: str, count: int) -> None:
    model_admin.message_user(request, message % {"count": count}, messages.SUCCESS)


class ShopOrCodeSearch:
    """Search by referral code (exact, any case) or shop domain (advocate or referred store)."""

    def search_condition(self, request, term: str) -> Q:
        return (
            Q(code=term.upper())
            | Q(merchant__shop_domain=term.lower())
            | Q(**{f"{self.referred_field}__shop_domain": term.lower()})
            | Q(pk=term)
        )


@admin.register(MerchantReferral)
class MerchantReferralAdmin(ShopOrCodeSearch, ReadOnlyAdmin):
    referred_field = "referred_merchant"
    list_display = ("code", "merchant", "referred_merchant", "status", "reward_id", "created_at", "completed_at")
    list_filter = (MerchantFilter, "status")
    list_select_related = ("merchant", "referred_merchant")
    exact_search_fields = ("code",)
    ordering = ("-created_at",)
    actions = ["complete", "expire", "grant_reward"]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id",
                    "merchant",
                    "referred_merchant",
                    "code",
                    "reward_id",
                    "status",
                    "created_at",
                    "completed_at",
                    "expired_at",
                    "expired_reason",
                )
            },
        )
    ]

    def has_complete_permission(self, request):
        return _allowed(request, "change_merchantreferral")

    def has_expire_permission(self, request):
        return _allowed(request, "change_merchantreferral")

    def has_grant_reward_permission(self, request):
        return _allowed(request, "add_merchantreferralreward")

    @admin.action(description=_("Complete the selected referrals (grants their rewards)"), permissions=["complete"])
    def complete(self, request, queryset):
        done = 0
        for referral in queryset.exclude(status=ReferralStatus.COMPLETED)[:ACTION_LIMIT]:
            merchant_referral_complete(referral=referral, actor=request.user)
            done += 1
        _report(self, request, ngettext("%(count)d referral completed.", "%(count)d referrals completed.", done), done)

    @admin.action(description=_("Expire the selected pending referrals"), permissions=["expire"])
    def expire(self, request, queryset):
        done = 0
        for referral in queryset.filter(status=ReferralStatus.PENDING)[:ACTION_LIMIT]:
            try:
                merchant_referral_expire(referral=referral, reason="staff", actor=request.user)
                done += 1
            except InvalidTransition:
                continue
        _report(self, request, ngettext("%(count)d referral expired.", "%(count)d referrals expired.", done), done)

    @admin.action(description=_("Grant the advocate's reward of the selected referrals"), permissions=["grant_reward"])
    def grant_reward(self, request, queryset):
        from django.db import transaction

        done = 0
        for referral in queryset.select_related("merchant", "referred_merchant")[:ACTION_LIMIT]:
            with transaction.atomic():
                merchant_referral_rewards_grant(referral=referral, actor=request.user, roles={"advocate"})
            done += 1
        _report(self, request, ngettext("%(count)d reward granted.", "%(count)d rewards granted.", done), done)


@admin.register(MerchantReferralReward)
class MerchantReferralRewardAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant", "role", "reward_id", "amount", "currency", "status", "attempts", "applied_at")
    list_filter = (MerchantFilter, "status", "role")
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "referral__id", "shopify_credit_id")
    ordering = ("-created_at",)
    actions = ["retry"]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id",
                    "merchant",
                    "referral",
                    "role",
                    "reward_id",
                    "amount",
                    "currency",
                    "status",
                    "shopify_credit_id",
                    "attempts",
                    "last_error",
                    "created_at",
                    "applied_at",
                )
            },
        )
    ]

    def has_retry_permission(self, request):
        return _allowed(request, "change_merchantreferralreward")

    @admin.action(
        description=_("Apply again (failed, or checked in Shopify that no credit was made)"), permissions=["retry"]
    )
    def retry(self, request, queryset):
        done = 0
        for reward in queryset.filter(status__in=[RewardStatus.FAILED, RewardStatus.APPLYING])[:ACTION_LIMIT]:
            merchant_referral_reward_retry(reward=reward, actor=request.user)
            done += 1
        _report(
            self, request, ngettext("%(count)d reward queued again.", "%(count)d rewards queued again.", done), done
        )


@admin.register(MerchantReferralLink)
class MerchantReferralLinkAdmin(ReadOnlyAdmin):
    list_display = ("code", "merchant", "reward_id", "is_active", "created_at")
    list_filter = (MerchantFilter, "is_active")
    list_select_related = ("merchant",)
    exact_search_fields = ("code",)
    lowercase_search_fields = ("merchant__shop_domain",)
    ordering = ("-created_at",)
    fieldsets = [(None, {"fields": ("id", "merchant", "code", "reward_id", "locale", "is_active", "created_at")})]
