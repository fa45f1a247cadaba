"""The loyalty core: merchants, their staff, customers, orders, the points ledger and settings.

Table and column names follow the product specification (`users` holds customers,
`admin_users` holds merchant staff). Every tenant model carries `merchant` and its default
manager fails closed outside a merchant scope (see `apps.core.tenancy`).
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from .ids import PrefixedIdField
from .locales import LOCALE_CHOICES, LOCALES
from .tenancy import TenantManager

SHOP_DOMAIN_REGEX = r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$"


def validate_localized_text(value):
    """Merchant-entered text per locale: {"en": "Gold", "ar": "ذهبي"}; English is required."""
    if not isinstance(value, dict) or not value:
        raise ValidationError(_("Enter the text as an object keyed by locale."), code="invalid")
    unknown = sorted(set(value) - set(LOCALES))
    if unknown:
        raise ValidationError(_("Unknown locale: %(locales)s."), code="invalid", params={"locales": ", ".join(unknown)})
    if not str(value.get("en", "")).strip():
        raise ValidationError(_("An English text is required."), code="required")
    for text in value.values():
        if not isinstance(text, str) or len(text) > 200:
            raise ValidationError(_("Each text must be at most 200 characters."), code="max_length")


def localized(value: dict, locale: str) -> str:
    """Pick the text for a locale, falling back to English."""
    return (value or {}).get(locale) or (value or {}).get("en", "")


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Industry(models.TextChoices):
    PET_STORE = "pet_store", _("Pet store")
    ELECTRONICS = "electronics", _("Electronics")
    FASHION = "fashion", _("Fashion and apparel")
    BEAUTY = "beauty", _("Health and beauty")
    FOOD = "food", _("Food and drink")
    HOME = "home", _("Home and garden")
    SPORTS = "sports", _("Sports and outdoors")
    OTHER = "other", _("Other")


class Merchant(TimestampedModel):
    """A Shopify shop that installed LoyalNest. The tenant itself, so not scoped."""

    id = PrefixedIdField(prefix="mer")
    shop_domain = models.CharField(max_length=255, unique=True, validators=[RegexValidator(SHOP_DOMAIN_REGEX)])
    name = models.CharField(max_length=255)
    industry = models.CharField(max_length=32, choices=Industry.choices, default=Industry.OTHER)
    shopify_plan = models.CharField(max_length=64, blank=True, default="")
    primary_locale = models.CharField(max_length=8, choices=LOCALE_CHOICES, default="en")
    currency = models.CharField(max_length=3, default="USD")
    timezone = models.CharField(max_length=64, default="UTC")
    is_installed = models.BooleanField(default=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "merchants"
        ordering = ["shop_domain"]
        constraints = [
            models.CheckConstraint(
                condition=Q(shop_domain__regex=SHOP_DOMAIN_REGEX), name="merchants_shop_domain_valid"
            ),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="merchants_currency_iso4217"),
        ]

    def __str__(self):
        return self.shop_domain

    @property
    def is_plus(self) -> bool:
        return self.shopify_plan.lower() in {"shopify_plus", "plus", "plus_partner_sandbox"}


class StaffRole(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    MARKETER = "marketer", _("Marketer")
    SUPPORT = "support", _("Support")


class StaffMember(TimestampedModel):
    """A merchant's staff user as Shopify identifies them (session token `sub`)."""

    id = PrefixedIdField(prefix="stf")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="staff")
    shopify_user_id = models.CharField(max_length=64)
    email = models.EmailField(blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    role = models.CharField(max_length=16, choices=StaffRole.choices, default=StaffRole.SUPPORT)
    is_active = models.BooleanField(default=True)

    objects = TenantManager()

    # A StaffMember is the authenticated principal of merchant API requests.
    is_authenticated = True

    class Meta:
        db_table = "admin_users"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "shopify_user_id"], name="admin_users_merchant_user_unique"),
            models.CheckConstraint(condition=Q(role__in=StaffRole.values), name="admin_users_role_valid"),
        ]

    def __str__(self):
        return f"{self.name or self.shopify_user_id} ({self.role})"


class LifecycleStage(models.TextChoices):
    NEW_LEAD = "new_lead", _("New lead")
    REPEAT_BUYER = "repeat_buyer", _("Repeat buyer")
    CHURNED = "churned", _("Churned")
    VIP = "vip", _("VIP")


class VipTier(TimestampedModel):
    """A VIP tier reached by lifetime points earned. Names are stored per locale."""

    id = PrefixedIdField(prefix="tier")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="vip_tiers")
    name = models.JSONField(validators=[validate_localized_text])
    min_lifetime_points = models.PositiveIntegerField()
    perks = models.JSONField(default=dict, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "vip_tiers"
        ordering = ["merchant", "min_lifetime_points"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "min_lifetime_points"], name="vip_tiers_merchant_threshold_unique"
            ),
            models.CheckConstraint(condition=Q(min_lifetime_points__gte=0), name="vip_tiers_threshold_non_negative"),
        ]

    def __str__(self):
        return localized(self.name, "en")


# What Shopify's customers webhooks fill in and customers/redact blanks.
CUSTOMER_CONTACT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "email_marketing_consent",
    "sms_marketing_consent",
)


class Customer(TimestampedModel):
    """A shopper of one merchant (table `users` in the specification)."""

    id = PrefixedIdField(prefix="cus")
    # Indexed through the (merchant, …) composites in Meta; a lone FK index would only cost writes.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="customers", db_index=False)
    shopify_customer_id = models.CharField(max_length=64)
    # Personal data: erased by customers/redact, masked in admin without permission.
    email = models.EmailField(blank=True, default="")
    first_name = models.CharField(max_length=255, blank=True, default="")
    last_name = models.CharField(max_length=255, blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")
    # Shopify's marketing consent states (`subscribed`, `not_subscribed`, `unsubscribed`,
    # `pending`, `redacted`, `invalid`); only `subscribed` lets LoyalNest send marketing.
    email_marketing_consent = models.CharField(max_length=16, blank=True, default="")
    sms_marketing_consent = models.CharField(max_length=16, blank=True, default="")
    locale = models.CharField(max_length=8, choices=LOCALE_CHOICES, default="en")
    points_balance = models.IntegerField(default=0)
    lifetime_points = models.IntegerField(default=0)
    vip_tier = models.ForeignKey(
        VipTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="customers", db_index=False
    )
    churn_score = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.NEW_LEAD)
    rfm_segment = models.CharField(max_length=32, blank=True, default="")
    shared_customer_id = models.CharField(max_length=64, null=True, blank=True)
    orders_count = models.PositiveIntegerField(default=0)
    total_spent = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    last_order_at = models.DateTimeField(null=True, blank=True)
    redacted_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "users"
        ordering = ["merchant", "id"]
        permissions = [("view_customer_pii", "Can view personal data of customers and staff")]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "shopify_customer_id"], name="users_merchant_shopify_id_unique"
            ),
            # The specification makes shared_customer_id UNIQUE; in a store group every store
            # holds a row for the same shared customer, so it is unique per store instead.
            models.UniqueConstraint(fields=["merchant", "shared_customer_id"], name="users_merchant_shared_id_unique"),
            models.CheckConstraint(condition=Q(points_balance__gte=0), name="users_points_balance_non_negative"),
            models.CheckConstraint(condition=Q(lifetime_points__gte=0), name="users_lifetime_points_non_negative"),
            models.CheckConstraint(
                condition=Q(churn_score__isnull=True) | Q(churn_score__gte=0, churn_score__lte=1),
                name="users_churn_score_range",
            ),
            models.CheckConstraint(
                condition=Q(lifecycle_stage__in=LifecycleStage.values),
                name="users_lifecycle_stage_valid",
            ),
            models.CheckConstraint(condition=Q(total_spent__gte=0), name="users_total_spent_non_negative"),
        ]
        indexes = [
            models.Index(fields=["shared_customer_id"], name="idx_users_shared_customer_id"),
            models.Index(fields=["merchant", "-points_balance"], name="idx_users_merchant_balance"),
            # Support desks and admin look shoppers up by email; iexact compiles to UPPER() = UPPER().
            models.Index(Upper("email"), name="idx_users_email_upper"),
            models.Index(fields=["vip_tier"], condition=Q(vip_tier__isnull=False), name="idx_users_vip_tier"),
        ]

    def __str__(self):
        return self.id

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email or self.id


class Order(TimestampedModel):
    """A Shopify order as LoyalNest last saw it (newer `shopify_updated_at` wins)."""

    id = PrefixedIdField(prefix="ord")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="orders", db_index=False)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders", db_index=False
    )
    shopify_order_id = models.CharField(max_length=64)
    name = models.CharField(max_length=64, blank=True, default="")
    total_price = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    financial_status = models.CharField(max_length=32, blank=True, default="paid")
    processed_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    shopify_updated_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "orders"
        ordering = ["merchant", "-processed_at"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "shopify_order_id"], name="orders_merchant_shopify_id_unique"),
            models.CheckConstraint(condition=Q(total_price__gte=0), name="orders_total_non_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("total_price")),
                name="orders_refund_within_total",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "customer", "processed_at"], name="idx_orders_customer_time"),
            models.Index(fields=["customer"], condition=Q(customer__isnull=False), name="idx_orders_customer"),
        ]

    def __str__(self):
        return self.name or self.shopify_order_id


class RewardKind(models.TextChoices):
    FIXED_DISCOUNT = "fixed_discount", _("Fixed amount discount")
    PERCENT_DISCOUNT = "percent_discount", _("Percentage discount")
    FREE_SHIPPING = "free_shipping", _("Free shipping")
    FREE_PRODUCT = "free_product", _("Free product")


class Reward(TimestampedModel):
    """Something a customer redeems points for."""

    id = PrefixedIdField(prefix="rwd")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="rewards")
    name = models.JSONField(validators=[validate_localized_text])
    kind = models.CharField(max_length=32, choices=RewardKind.choices)
    points_cost = models.PositiveIntegerField()
    value = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    is_active = models.BooleanField(default=True)

    objects = TenantManager()

    class Meta:
        db_table = "rewards"
        ordering = ["merchant", "points_cost"]
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="rewards_points_cost_positive"),
            models.CheckConstraint(condition=Q(value__gte=0), name="rewards_value_non_negative"),
            models.CheckConstraint(condition=Q(kind__in=RewardKind.values), name="rewards_kind_valid"),
        ]

    def __str__(self):
        return localized(self.name, "en")


class TransactionKind(models.TextChoices):
    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    ADJUST = "adjust", _("Adjusted")
    REVERSE = "reverse", _("Reversed")


class PointsTransactionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("points_transactions is append-only; write a reversing entry instead")

    def delete(self):
        raise TypeError("points_transactions is append-only; write a reversing entry instead")


class PointsTransaction(models.Model):
    """One entry of the append-only points ledger. The balance is the sum of `points`."""

    id = PrefixedIdField(prefix="ptx")
    # Every reference is indexed explicitly in Meta (composites, or partial where mostly NULL):
    # the ledger is the most written table and each needless index is paid on every insert.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="transactions", db_index=False)
    kind = models.CharField(max_length=16, choices=TransactionKind.choices)
    points = models.IntegerField()
    balance_after = models.IntegerField()
    idempotency_key = models.CharField(max_length=255)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions", db_index=False
    )
    reward = models.ForeignKey(
        Reward, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions", db_index=False
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals", db_index=False
    )
    # For reversals: how much of the original this entry reverses. Usually -points; more when
    # the customer had already spent the points (the shortfall is in metadata).
    reversed_amount = models.PositiveIntegerField(default=0)
    actor = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    reason = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager(models.Manager.from_queryset(PointsTransactionQuerySet))

    class Meta:
        db_table = "points_transactions"
        ordering = ["customer", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"], name="points_transactions_idempotency_unique"
            ),
            models.CheckConstraint(
                condition=~Q(points=0) | Q(kind="reverse"), name="points_transactions_points_non_zero"
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="points_transactions_balance_non_negative"),
            models.CheckConstraint(condition=Q(kind__in=TransactionKind.values), name="points_transactions_kind_valid"),
            models.CheckConstraint(
                condition=(
                    Q(kind="earn", points__gt=0)
                    | Q(kind="redeem", points__lt=0)
                    | Q(kind="adjust")
                    | Q(kind="reverse", reverses__isnull=False, reversed_amount__gt=0)
                ),
                name="points_transactions_sign_matches_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="idx_points_tx_customer_time"),
            # The dashboard's "latest activity" of a shop.
            models.Index(fields=["merchant", "-created_at"], name="idx_points_tx_merchant_time"),
            models.Index(fields=["order"], condition=Q(order__isnull=False), name="idx_points_tx_order"),
            models.Index(fields=["reward"], condition=Q(reward__isnull=False), name="idx_points_tx_reward"),
            models.Index(fields=["reverses"], condition=Q(reverses__isnull=False), name="idx_points_tx_reverses"),
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="idx_points_tx_actor"),
        ]

    def __str__(self):
        return f"{self.kind} {self.points:+d} ({self.customer_id})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("points_transactions is append-only; write a reversing entry instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("points_transactions is append-only; write a reversing entry instead")


class ReferralLink(TimestampedModel):
    """A customer's referral code (CSPRNG, globally unique)."""

    id = PrefixedIdField(prefix="ref")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="referral_links")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="referral_links")
    code = models.CharField(max_length=32, unique=True)
    clicks = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    objects = TenantManager()

    class Meta:
        db_table = "referral_links"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "customer"],
                condition=Q(is_active=True),
                name="referral_links_one_active_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(conversions__lte=models.F("clicks")) | Q(clicks=0),
                name="referral_links_conversions_within_clicks",
            ),
        ]

    def __str__(self):
        return self.code


DEFAULT_ROLE_SCOPES = {
    "owner": [
        "admin:analytics",
        "admin:points",
        "admin:referrals",
        "admin:gamification",
        "admin:frontend",
        "admin:community",
    ],
    "manager": [
        "admin:analytics",
        "admin:points",
        "admin:referrals",
        "admin:gamification",
        "admin:frontend",
    ],
    "marketer": ["admin:analytics", "admin:referrals", "admin:gamification", "admin:frontend"],
    "support": ["admin:points"],
}


def default_role_scopes():
    return {role: list(scopes) for role, scopes in DEFAULT_ROLE_SCOPES.items()}


class ProgramSettings(TimestampedModel):
    """One merchant's loyalty programme: earning rules, configs of the premium features, roles."""

    id = PrefixedIdField(prefix="ps")
    # One-to-one: its unique index is the specification's idx_program_settings_merchant_id.
    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="program_settings")
    points_per_currency_unit = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("1.00"))
    signup_points = models.PositiveIntegerField(default=0)
    referral_advocate_points = models.PositiveIntegerField(default=0)
    referral_friend_points = models.PositiveIntegerField(default=0)
    multi_store_config = models.JSONField(default=dict, blank=True)
    theme_extension_config = models.JSONField(default=dict, blank=True)
    role_scopes = models.JSONField(default=default_role_scopes)

    objects = TenantManager()

    class Meta:
        db_table = "program_settings"
        verbose_name_plural = "program settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(points_per_currency_unit__gte=0),
                name="program_settings_rate_non_negative",
            ),
        ]

    def __str__(self):
        return f"Program settings of {self.merchant_id}"


class AuditLog(models.Model):
    """Who did what to which row. Written by `audit_record`, never edited."""

    id = PrefixedIdField(prefix="aud")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    action = models.CharField(max_length=64)
    actor = models.ForeignKey(
        StaffMember,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_column="actor_id",
        db_index=False,
    )
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "audit_logs"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["action"], name="idx_audit_logs_action"),
            models.Index(fields=["merchant", "created_at"], name="idx_audit_logs_merchant_time"),
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="idx_audit_logs_actor"),
            models.Index(
                fields=["staff_user"], condition=Q(staff_user__isnull=False), name="idx_audit_logs_staff_user"
            ),
        ]

    def __str__(self):
        return f"{self.action} {self.target_type}:{self.target_id}"


class IdempotencyRecord(models.Model):
    """The stored answer to a merchant POST sent with an `Idempotency-Key` header."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "idempotency_keys"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "key"], name="idempotency_keys_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idx_idempotency_keys_created")]

    def __str__(self):
        return f"{self.method} {self.path} ({self.key})"
