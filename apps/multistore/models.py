"""Store groups, the shared accounts that are the truth of a shared customer's balance, and what
the merchant page shows (link reviews, sync lag). See docs/MULTI_STORE.md.

A group spans several tenants, so these models are not merchant-scoped: every query goes
through `selectors`/`services`, which always filter by the caller's group.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.ids import PrefixedIdField
from apps.core.models import Customer, Merchant, PointsTransaction, StaffMember, TimestampedModel
from apps.core.tenancy import TenantManager

SHARED_KEYS = ("points", "tiers", "referrals", "leaderboard")


def default_sharing() -> dict:
    return {"points": True, "tiers": True, "referrals": True, "leaderboard": False}


class StoreGroup(TimestampedModel):
    """Stores of one owner that share one loyalty programme (Shopify Plus expansion stores)."""

    id = PrefixedIdField(prefix="grp")
    name = models.CharField(max_length=255)
    # What the members share; points are always shared (that is what a group is).
    sharing = models.JSONField(default=default_sharing)
    created_by = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "multistore_groups"

    def __str__(self):
        return self.name


class MemberRole(models.TextChoices):
    PRIMARY = "primary", _("Primary store")
    MEMBER = "member", _("Member store")


class StoreGroupMember(models.Model):
    """A store in a group; a store belongs to at most one group."""

    group = models.ForeignKey(StoreGroup, on_delete=models.CASCADE, related_name="members")
    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="store_group_membership")
    role = models.CharField(max_length=16, choices=MemberRole.choices, default=MemberRole.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    # Scoped like every row naming a merchant; the group's own code, which always filters by
    # group and spans its member stores by design, reads through `across_stores`.
    objects = TenantManager()
    across_stores = models.Manager()  # noqa: DJ012  (a second manager, not a field)

    class Meta:
        db_table = "multistore_group_members"
        ordering = ["joined_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(role__in=MemberRole.values), name="multistore_role_valid")]

    def __str__(self):
        return f"{self.merchant_id} in {self.group_id}"


class StoreGroupInvite(models.Model):
    """A signed, expiring, single-use invitation for one shop to join a group."""

    id = PrefixedIdField(prefix="inv")
    group = models.ForeignKey(StoreGroup, on_delete=models.CASCADE, related_name="invites")
    invited_by = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    invited_by_staff = models.ForeignKey(StaffMember, null=True, on_delete=models.SET_NULL, related_name="+")
    shop_domain = models.CharField(max_length=255)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_merchant = models.ForeignKey(Merchant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "multistore_invites"
        ordering = ["-created_at"]

    def __str__(self):
        return f"invite {self.shop_domain} to {self.group_id}"


class SharedAccount(models.Model):
    """One shared customer of a group: its id is the `shared_customer_id` of every linked store
    customer, and its balance is the truth every linked customer's cached balance equals."""

    id = PrefixedIdField(prefix="shc")
    group = models.ForeignKey(StoreGroup, on_delete=models.CASCADE, related_name="accounts")
    # SHA-256 of the normalized email: matches new customers without keeping the address twice.
    email_digest = models.CharField(max_length=64, blank=True, default="")
    points_balance = models.IntegerField(default=0)
    lifetime_points = models.IntegerField(default=0)
    version = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "multistore_shared_accounts"
        constraints = [
            models.CheckConstraint(condition=Q(points_balance__gte=0), name="multistore_account_balance_non_negative"),
            models.CheckConstraint(
                condition=Q(lifetime_points__gte=0), name="multistore_account_lifetime_non_negative"
            ),
            models.UniqueConstraint(
                fields=["group", "email_digest"], condition=~Q(email_digest=""), name="multistore_account_email_unique"
            ),
        ]

    def __str__(self):
        return self.id


class SharedEntryKind(models.TextChoices):
    STORE = "store", _("Store ledger entry")
    LINK = "link", _("Customer linked")
    UNLINK = "unlink", _("Customer unlinked")


class SharedLedgerEntry(models.Model):
    """The group-level ledger: every movement of a shared balance, with the store it came from.
    Append-only; the account's balance is the sum of its entries."""

    account = models.ForeignKey(SharedAccount, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=16, choices=SharedEntryKind.choices)
    source_merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    source_customer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL, related_name="+")
    source_transaction = models.OneToOneField(
        PointsTransaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    points = models.IntegerField()
    balance_after = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "multistore_shared_entries"
        ordering = ["account", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="multistore_entry_balance_non_negative"),
            models.CheckConstraint(condition=Q(kind__in=SharedEntryKind.values), name="multistore_entry_kind_valid"),
        ]

    def __str__(self):
        return f"{self.kind} {self.points:+d} ({self.account_id})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("multistore_shared_entries is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("multistore_shared_entries is append-only")


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for review")
    MERGED = "merged", _("Merged")
    KEPT_APART = "kept_apart", _("Kept apart")


class LinkReview(models.Model):
    """Customers whose email matches ambiguously across the group: the merchant decides."""

    id = PrefixedIdField(prefix="rev")
    group = models.ForeignKey(StoreGroup, on_delete=models.CASCADE, related_name="reviews")
    email_digest = models.CharField(max_length=64)
    customers = models.ManyToManyField(Customer, related_name="+", db_table="multistore_review_customers")
    reason = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    resolved_by = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "multistore_link_reviews"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "email_digest"],
                condition=Q(status="pending"),
                name="multistore_review_pending_unique",
            ),
        ]

    def __str__(self):
        return f"review {self.id} ({self.status})"


class SyncLagSample(models.Model):
    """Time from a shared balance change to a store's metafield copy confirmed by Shopify."""

    group = models.ForeignKey(StoreGroup, on_delete=models.CASCADE, related_name="+")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    lag_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantManager()
    across_stores = models.Manager()  # noqa: DJ012  (a second manager, not a field)

    class Meta:
        db_table = "multistore_sync_lag"

    def __str__(self):
        return f"{self.merchant_id}: {self.lag_ms} ms"
