"""Merchant referral program (seeds section 3): links, clicks, conversions and rewards.

- `MerchantReferralLink` — an advocate merchant's code (`/r/<code>`), made by
  `POST /v1/api/merchant-referrals/create`.
- `MerchantReferral` — the seeds' `merchant_referrals` table: one row per referred store that
  installed through a link (`pending` → `completed` | `expired`). Hash-partitioned by the
  advocate on PostgreSQL (migration 0002), so its foreign keys from other tables are logical.
- `MerchantReferralClick` — one click per visitor per link per day (keyed visitor hash, no IP).
- `MerchantReferralDaily` — clicks and conversions per advocate per day: the analytics read.
- `MerchantReferralReward` — a reward granted on completion (advocate's, referred store's
  welcome), applied as a Shopify app credit; one row per (referral, recipient role).
- `MerchantReferralOwner` — a keyed hash of a shop's owner email (from Shopify), to refuse
  referrals between stores of the same owner without storing the address.

Every row carries `merchant` (the tenant: the advocate, or the reward's recipient) and is
scoped fail-closed like the loyalty core.
"""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.ids import PrefixedIdField
from apps.core.models import Merchant
from apps.core.tenancy import TenantManager


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    COMPLETED = "completed", _("Completed")
    EXPIRED = "expired", _("Expired")


class MerchantReferralLink(models.Model):
    id = PrefixedIdField(prefix="mrl")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_column="advocate_merchant_id")
    code = models.CharField(max_length=32, unique=True)
    reward_id = models.CharField(max_length=64, default="1_month_free")
    locale = models.CharField(max_length=8, default="en")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "merchant_referral_links"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(is_active=True), name="merchant_referral_links_one_active"
            ),
        ]

    def __str__(self):
        return self.code


class MerchantReferral(models.Model):
    id = PrefixedIdField(prefix="mref", db_column="merchant_referral_id")
    # The advocate is the tenant; the column keeps the seeds' name.
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="+", db_column="advocate_merchant_id", db_index=False
    )
    referred_merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="+", db_column="referred_merchant_id"
    )
    link = models.ForeignKey(MerchantReferralLink, on_delete=models.PROTECT, related_name="+", db_index=False)
    code = models.CharField(max_length=32)
    reward_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ReferralStatus.choices, default=ReferralStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    # Why it expired: "window" (not qualified in time), "uninstalled", "same_owner", "staff".
    expired_reason = models.CharField(max_length=32, blank=True, default="")

    objects = TenantManager()

    class Meta:
        db_table = "merchant_referrals"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["merchant", "created_at"], name="idx_mref_advocate_time"),
            models.Index(fields=["status", "created_at"], name="idx_mref_status_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReferralStatus.values), name="merchant_referrals_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(merchant=models.F("referred_merchant")), name="merchant_referrals_not_self"
            ),
        ]

    def __str__(self):
        return f"{self.code} → {self.referred_merchant_id}"

    @property
    def advocate_merchant_id(self) -> str:
        return self.merchant_id


class MerchantReferralClick(models.Model):
    id = models.BigAutoField(primary_key=True)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    link = models.ForeignKey(MerchantReferralLink, on_delete=models.CASCADE, related_name="+", db_index=False)
    # HMAC of (client address, user agent) with SECRET_KEY: counts visitors, identifies nobody.
    visitor_hash = models.CharField(max_length=64)
    clicked_date = models.DateField()
    clicked_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        db_table = "merchant_referral_clicks"
        constraints = [
            models.UniqueConstraint(
                fields=["link", "clicked_date", "visitor_hash"], name="merchant_referral_clicks_one_per_day"
            ),
        ]
        indexes = [models.Index(fields=["merchant", "clicked_date"], name="idx_mref_clicks_merchant_date")]

    def __str__(self):
        return f"{self.link_id} {self.clicked_date}"


class MerchantReferralDaily(models.Model):
    """Clicks and conversions (attributed installs) per advocate per day (UTC)."""

    id = models.BigAutoField(primary_key=True)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    clicks = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)

    objects = TenantManager()

    class Meta:
        db_table = "merchant_referral_daily"
        constraints = [models.UniqueConstraint(fields=["merchant", "day"], name="merchant_referral_daily_unique")]

    def __str__(self):
        return f"{self.merchant_id} {self.day}"


class RewardRole(models.TextChoices):
    ADVOCATE = "advocate", _("Advocate")
    REFERRED = "referred", _("Referred store (welcome)")


class RewardStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    # Sent to Shopify, answer unknown (timeout): never sent again automatically (staff check).
    APPLYING = "applying", _("Applying")
    APPLIED = "applied", _("Applied")
    FAILED = "failed", _("Failed")


class MerchantReferralReward(models.Model):
    id = PrefixedIdField(prefix="mrw")
    # The recipient (advocate or referred store).
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    # merchant_referrals is partitioned: its key is (id, advocate), so no database foreign key.
    referral = models.ForeignKey(
        MerchantReferral, on_delete=models.DO_NOTHING, db_constraint=False, related_name="rewards"
    )
    role = models.CharField(max_length=16, choices=RewardRole.choices)
    reward_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=16, choices=RewardStatus.choices, default=RewardStatus.PENDING)
    shopify_credit_id = models.CharField(max_length=128, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "merchant_referral_rewards"
        constraints = [
            # A reward is granted once per referral and recipient, whatever retries happen.
            models.UniqueConstraint(fields=["referral", "role"], name="merchant_referral_rewards_once"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="merchant_referral_rewards_amount_non_negative"),
        ]
        indexes = [models.Index(fields=["merchant", "created_at"], name="idx_mref_rewards_merchant")]

    def __str__(self):
        return f"{self.reward_id} ({self.role})"


class MerchantReferralOwner(models.Model):
    """Who owns a shop, as a keyed hash of Shopify's `shop.email` (the owner's address)."""

    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, primary_key=True, related_name="+")
    owner_hash = models.CharField(max_length=64, blank=True, default="")
    checked_at = models.DateTimeField()

    objects = TenantManager()

    class Meta:
        db_table = "merchant_referral_owners"
        indexes = [models.Index(fields=["owner_hash"], name="idx_mref_owners_hash")]

    def __str__(self):
        return str(self.merchant_id)
