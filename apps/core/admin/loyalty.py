"""The staff admin over every model of the loyalty core.

Most rows are owned by Shopify (merchants, customers, orders) or by services that keep
invariants (the ledger: cached balance = sum of entries), so they are view only here. The
few editable fields are validated and every save writes an audit row in the admin's own
transaction. The ledger and the audit trail are view only for everyone, superusers included.
"""

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.models import (
    AuditLog,
    Customer,
    IdempotencyRecord,
    Merchant,
    Order,
    PointsTransaction,
    ProgramSettings,
    ReferralLink,
    Reward,
    StaffMember,
    VipTier,
    localized,
)

from .base import (
    CustomerFilter,
    EstimatedCountPaginator,
    InputFilter,
    LoyalNestAdmin,
    MerchantFilter,
    PersonalDataAdminMixin,
    ReadOnlyAdmin,
    filtered_changelist_url,
)
from .forms import ProgramSettingsForm, RewardForm, VipTierForm

admin.site.site_header = _("LoyalNest staff admin")
admin.site.site_title = _("LoyalNest staff admin")
admin.site.index_title = _("Merchants, customers and the points ledger")


def pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def link_list(*items) -> str:
    """`(url, label)` pairs as one line of links."""
    return format_html_join(" · ", '<a href="{}">{}</a>', items)


class StaffMemberReferenceMixin:
    """Show who acted by staff member id: `StaffMember.__str__` carries the name (personal data)."""

    @admin.display(description=_("staff member id"), empty_value="-")
    def actor_reference(self, obj):
        return obj.actor_id


class LargeTableAdmin(ReadOnlyAdmin):
    """Millions of rows: estimated total, no second unfiltered count, newest (ULID) first."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-id",)
    # Sorting by an unindexed column would sort the whole table on every page view.
    sortable_by = ("id",)


class AuditedChangeMixin:
    """Every admin save of an editable row writes an audit row (field names, never values)."""

    audit_action = ""

    def audit_merchant(self, obj):
        return obj.merchant

    def audit_metadata(self, obj, form) -> dict:
        return {"source": "django_admin", "fields": sorted(form.changed_data)}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            audit_record(
                merchant=self.audit_merchant(obj),
                actor=request.user,
                action=self.audit_action,
                target=obj,
                metadata=self.audit_metadata(obj, form),
            )


class ActionFilter(InputFilter):
    title = _("action")
    parameter_name = "action"
    placeholder = _("e.g. customer_pii_viewed")

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        return queryset.filter(action=value) if value else queryset


class FinancialStatusFilter(admin.SimpleListFilter):
    """Shopify's financial statuses, listed rather than collected with DISTINCT over all orders."""

    title = _("financial status")
    parameter_name = "financial_status"

    def lookups(self, request, model_admin):
        return [
            ("pending", _("Pending")),
            ("authorized", _("Authorized")),
            ("partially_paid", _("Partially paid")),
            ("paid", _("Paid")),
            ("partially_refunded", _("Partially refunded")),
            ("refunded", _("Refunded")),
            ("voided", _("Voided")),
        ]

    def queryset(self, request, queryset):
        return queryset.filter(financial_status=self.value()) if self.value() else queryset


@admin.register(Merchant)
class MerchantAdmin(AuditedChangeMixin, LoyalNestAdmin):
    list_display = ("shop_domain", "name", "id", "industry", "shopify_plan", "primary_locale", "is_installed")
    list_display_links = ("shop_domain",)
    list_filter = ("is_installed", "industry", "primary_locale")
    search_fields = ("=id", "shop_domain", "name")
    search_help_text = _("Shop domain, name or merchant id.")
    ordering = ("shop_domain",)
    list_per_page = 100
    fieldsets = [
        (None, {"fields": ["id", "shop_domain", "name", "shopify_plan", "related"]}),
        (_("Settings"), {"fields": ["industry", "primary_locale", "currency", "timezone"]}),
        (_("Installation"), {"fields": ["is_installed", "installed_at", "uninstalled_at", "created_at", "updated_at"]}),
    ]
    # The shop's identity, currency and installation come from Shopify; staff may correct
    # only what the merchant chose in LoyalNest (industry benchmarks, default language).
    readonly_fields = (
        "id",
        "shop_domain",
        "name",
        "shopify_plan",
        "related",
        "currency",
        "timezone",
        "is_installed",
        "installed_at",
        "uninstalled_at",
        "created_at",
        "updated_at",
    )
    audit_action = "merchant_updated"

    def has_add_permission(self, request):
        return False  # merchants come from installing the app

    def audit_merchant(self, obj):
        return obj

    @admin.display(description=_("records"))
    def related(self, obj):
        return link_list(
            (filtered_changelist_url(Customer, merchant=obj.pk), _("Customers")),
            (filtered_changelist_url(Order, merchant=obj.pk), _("Orders")),
            (filtered_changelist_url(PointsTransaction, merchant=obj.pk), _("Points ledger")),
            (filtered_changelist_url(StaffMember, merchant=obj.pk), _("Staff")),
            (filtered_changelist_url(AuditLog, merchant=obj.pk), _("Audit log")),
        )


@admin.register(StaffMember)
class StaffMemberAdmin(PersonalDataAdminMixin, ReadOnlyAdmin):
    """Roles change only through the shop owner (`staff_member_set_role`)."""

    list_display = ("id", "merchant", "shopify_user_id", "name", "email", "role", "is_active", "created_at")
    list_filter = (MerchantFilter, "role", "is_active")
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "shopify_user_id")
    lowercase_search_fields = ("merchant__shop_domain",)
    search_help_text = _("Staff id, Shopify user id or shop domain (email with the personal data permission).")
    ordering = ("-id",)
    raw_id_fields = ("merchant",)
    fieldsets = [
        (None, {"fields": ["id", "merchant", "shopify_user_id", "role", "is_active"]}),
        (_("Personal data"), {"fields": ["name", "email"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]
    pii_fields = ("name", "email")
    pii_search_fields = ("email",)
    pii_viewed_action = "staff_member_pii_viewed"


@admin.register(Customer)
class CustomerAdmin(PersonalDataAdminMixin, LargeTableAdmin):
    list_display = (
        "id",
        "merchant",
        "shopify_customer_id",
        "email",
        "first_name",
        "last_name",
        "points_balance",
        "lifetime_points",
        "vip_tier",
        "lifecycle_stage",
        "rfm_segment",
    )
    list_filter = (MerchantFilter, "lifecycle_stage", ("redacted_at", admin.EmptyFieldListFilter))
    list_select_related = ("merchant", "vip_tier")
    exact_search_fields = ("id", "shopify_customer_id", "shared_customer_id")
    lowercase_search_fields = ("merchant__shop_domain",)
    search_help_text = _(
        "Customer id, Shopify customer id, shared customer id or shop domain "
        "(exact email with the personal data permission)."
    )
    raw_id_fields = ("merchant", "vip_tier")
    fieldsets = [
        (None, {"fields": ["id", "merchant", "shopify_customer_id", "shared_customer_id", "locale", "related"]}),
        (
            _("Personal data"),
            {
                "fields": [
                    "email",
                    "first_name",
                    "last_name",
                    "phone",
                    "email_marketing_consent",
                    "sms_marketing_consent",
                ]
            },
        ),
        (
            _("Loyalty"),
            {
                "fields": [
                    "points_balance",
                    "lifetime_points",
                    "vip_tier",
                    "lifecycle_stage",
                    "rfm_segment",
                    "churn_score",
                ]
            },
        ),
        (_("Orders"), {"fields": ["orders_count", "total_spent", "last_order_at"]}),
        (_("Record"), {"fields": ["created_at", "updated_at", "redacted_at"]}),
    ]
    pii_fields = ("email", "first_name", "last_name", "phone")
    pii_search_fields = ("email",)
    pii_viewed_action = "customer_pii_viewed"

    @admin.display(description=_("records"))
    def related(self, obj):
        return link_list(
            (filtered_changelist_url(PointsTransaction, customer=obj.pk), _("Points ledger")),
            (filtered_changelist_url(Order, customer=obj.pk), _("Orders")),
            (filtered_changelist_url(ReferralLink, customer=obj.pk), _("Referral links")),
        )


@admin.register(Order)
class OrderAdmin(LargeTableAdmin):
    list_display = (
        "id",
        "name",
        "merchant",
        "shopify_order_id",
        "customer_id",
        "total_price",
        "currency",
        "financial_status",
        "refunded_amount",
        "processed_at",
        "cancelled_at",
    )
    list_filter = (MerchantFilter, CustomerFilter, FinancialStatusFilter, ("cancelled_at", admin.EmptyFieldListFilter))
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "shopify_order_id", "name")
    lowercase_search_fields = ("merchant__shop_domain",)
    search_help_text = _("Order id, Shopify order id, order name (#1001) or shop domain.")
    raw_id_fields = ("merchant", "customer")
    fieldsets = [
        (None, {"fields": ["id", "merchant", "customer", "shopify_order_id", "name"]}),
        (
            _("Money"),
            {"fields": ["total_price", "currency", "financial_status", "refunded_amount"]},
        ),
        (_("Dates"), {"fields": ["processed_at", "cancelled_at", "shopify_updated_at", "created_at", "updated_at"]}),
    ]


@admin.register(PointsTransaction)
class PointsTransactionAdmin(StaffMemberReferenceMixin, LargeTableAdmin):
    """The append-only ledger: corrections are reversing entries written by the ledger services."""

    list_display = (
        "id",
        "created_at",
        "merchant",
        "customer_id",
        "kind",
        "points",
        "balance_after",
        "order_id",
        "reverses_id",
        "reason",
    )
    list_filter = (MerchantFilter, CustomerFilter, "kind")
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "idempotency_key", "customer_id", "order_id", "reverses_id")
    search_help_text = _("Entry id, idempotency key, customer id, order id or reversed entry id.")
    raw_id_fields = ("merchant", "customer", "order", "reward", "reverses", "actor")
    fieldsets = [
        (None, {"fields": ["id", "merchant", "customer", "kind", "points", "balance_after", "created_at"]}),
        (
            _("Source"),
            {
                "fields": [
                    "idempotency_key",
                    "order",
                    "reward",
                    "reverses",
                    "reversed_amount",
                    "actor_reference",
                    "reason",
                    "metadata_json",
                ]
            },
        ),
    ]

    @admin.display(description=_("metadata"))
    def metadata_json(self, obj):
        return pretty_json(obj.metadata)


@admin.register(VipTier)
class VipTierAdmin(AuditedChangeMixin, LoyalNestAdmin):
    form = VipTierForm
    list_display = ("id", "merchant", "name_en", "min_lifetime_points", "created_at")
    list_filter = (MerchantFilter,)
    list_select_related = ("merchant",)
    exact_search_fields = ("id",)
    lowercase_search_fields = ("merchant__shop_domain",)
    search_help_text = _("Tier id or shop domain.")
    ordering = ("merchant__shop_domain", "min_lifetime_points")
    raw_id_fields = ("merchant",)
    fields = ["id", "merchant", "name", "min_lifetime_points", "perks", "created_at", "updated_at"]
    # Moving a threshold would leave customers in the wrong tier; that is the merchant's
    # change, made in the app where tiers are recomputed.
    readonly_fields = ("id", "merchant", "min_lifetime_points", "created_at", "updated_at")
    audit_action = "vip_tier_updated"

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("name (English)"))
    def name_en(self, obj):
        return localized(obj.name, "en")


@admin.register(Reward)
class RewardAdmin(AuditedChangeMixin, LoyalNestAdmin):
    form = RewardForm
    list_display = ("id", "merchant", "name_en", "kind", "points_cost", "value", "is_active")
    list_filter = (MerchantFilter, "kind", "is_active")
    list_select_related = ("merchant",)
    exact_search_fields = ("id",)
    lowercase_search_fields = ("merchant__shop_domain",)
    search_help_text = _("Reward id or shop domain.")
    ordering = ("-id",)
    raw_id_fields = ("merchant",)
    fields = ["id", "merchant", "name", "kind", "points_cost", "value", "is_active", "created_at", "updated_at"]
    readonly_fields = ("id", "merchant", "kind", "points_cost", "value", "created_at", "updated_at")
    audit_action = "reward_updated"

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("name (English)"))
    def name_en(self, obj):
        return localized(obj.name, "en")


@admin.register(ReferralLink)
class ReferralLinkAdmin(LargeTableAdmin):
    list_display = ("id", "code", "merchant", "customer_id", "clicks", "conversions", "is_active", "created_at")
    list_filter = (MerchantFilter, CustomerFilter, "is_active")
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "code", "customer_id")
    search_help_text = _("Referral code, link id or customer id.")
    raw_id_fields = ("merchant", "customer")
    fieldsets = [
        (None, {"fields": ["id", "code", "merchant", "customer", "is_active"]}),
        (_("Analytics"), {"fields": ["clicks", "conversions", "created_at", "updated_at"]}),
    ]


@admin.register(ProgramSettings)
class ProgramSettingsAdmin(AuditedChangeMixin, LoyalNestAdmin):
    form = ProgramSettingsForm
    list_display = (
        "merchant",
        "id",
        "points_per_currency_unit",
        "signup_points",
        "referral_advocate_points",
        "referral_friend_points",
        "updated_at",
    )
    list_filter = (MerchantFilter,)
    list_select_related = ("merchant",)
    exact_search_fields = ("id", "merchant_id")
    lowercase_search_fields = ("merchant__shop_domain",)
    search_help_text = _("Settings id, merchant id or shop domain.")
    ordering = ("merchant__shop_domain",)
    raw_id_fields = ("merchant",)
    fieldsets = [
        (None, {"fields": ["id", "merchant"]}),
        (
            _("Earning"),
            {
                "fields": [
                    "points_per_currency_unit",
                    "signup_points",
                    "referral_advocate_points",
                    "referral_friend_points",
                ]
            },
        ),
        (_("Features"), {"fields": ["multi_store_config", "theme_extension_config"]}),
        (_("Roles"), {"fields": ["role_scopes"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = ("id", "merchant", "created_at", "updated_at")
    audit_action = "program_settings_updated"

    def has_add_permission(self, request):
        return False  # created with the merchant at install

    def audit_metadata(self, obj, form) -> dict:
        metadata = super().audit_metadata(obj, form)
        if "role_scopes" in form.changed_data:
            metadata["role_scopes"] = {"before": form.initial.get("role_scopes"), "after": obj.role_scopes}
        return metadata


@admin.register(AuditLog)
class AuditLogAdmin(StaffMemberReferenceMixin, LargeTableAdmin):
    """The audit trail: nobody adds, changes or deletes it here."""

    list_display = (
        "id",
        "created_at",
        "action",
        "merchant",
        "target_type",
        "target_id",
        "actor_reference",
        "staff_user",
    )
    list_filter = (MerchantFilter, ActionFilter)
    list_select_related = ("merchant", "staff_user")
    exact_search_fields = ("id", "target_id", "actor_id")
    search_help_text = _("Audit id, target id or staff member id.")
    raw_id_fields = ("merchant", "actor", "staff_user")
    fieldsets = [
        (None, {"fields": ["id", "created_at", "merchant", "action"]}),
        (_("Who"), {"fields": ["actor_reference", "staff_user"]}),
        (_("What"), {"fields": ["target_type", "target_id", "metadata_json"]}),
    ]

    @admin.display(description=_("metadata"))
    def metadata_json(self, obj):
        return pretty_json(obj.metadata)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(LargeTableAdmin):
    """Stored answers to retried merchant POSTs. Their bodies may hold personal data: not shown."""

    list_display = ("id", "created_at", "merchant", "method", "path", "response_status", "key")
    list_filter = (MerchantFilter,)
    list_select_related = ("merchant",)
    exact_search_fields = ("key",)
    search_help_text = _("Idempotency key.")
    raw_id_fields = ("merchant",)
    fieldsets = [
        (None, {"fields": ["id", "merchant", "key", "created_at"]}),
        (_("Request"), {"fields": ["method", "path", "request_fingerprint", "response_status"]}),
    ]
