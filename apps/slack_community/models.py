"""LoyalNest Collective members (`slack_community`, seeds section 6).

One row per Slack member a merchant brought into the community. On PostgreSQL the table is
hash-partitioned by merchant (migration 0002), and a partitioned table cannot hold a unique
index without the partition key, so the seeds' "`slack_user_id` UNIQUE" is enforced by the
small unpartitioned `slack_community_user_ids` table (one row per Slack member id), which is
also how a Slack event finds its merchant without scanning every partition.

`beta_features` is the merchant's set of flags, copied on every row of the merchant (they are
written together, in one UPDATE on one partition); a new member inherits them.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.ids import PrefixedIdField
from apps.core.local_cache import ForgetsLocalCopies
from apps.core.locales import LOCALE_CHOICES
from apps.core.models import Merchant, StaffMember
from apps.core.tenancy import TenantManager

from .storefront_flags import storefront_flags

SLACK_USER_ID_REGEX = r"^[UW][A-Z0-9]{8,20}$"


class MemberStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INVITED = "invited", _("Invited")
    INACTIVE = "inactive", _("Left the community")


class SlackCommunityMember(ForgetsLocalCopies, models.Model):
    community_id = PrefixedIdField(prefix="com", primary_key=True)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    slack_user_id = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=MemberStatus.choices, default=MemberStatus.INVITED)
    beta_features = models.JSONField(default=dict, blank=True)
    locale = models.CharField(max_length=8, choices=LOCALE_CHOICES, default="en")
    # Who joined from the embedded admin (no database FK: the table is partitioned).
    staff = models.ForeignKey(
        StaffMember, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    invite_attempts = models.PositiveIntegerField(default=0)
    # The last Slack error code (`ratelimited`, `slack_unavailable`, …); blank once invited.
    last_error = models.CharField(max_length=64, blank=True, default="")
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "slack_community"
        verbose_name = _("community member")
        verbose_name_plural = _("community members")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=MemberStatus.values), name="slack_community_status_valid"),
            models.CheckConstraint(
                condition=Q(slack_user_id__regex=SLACK_USER_ID_REGEX), name="slack_community_user_id_format"
            ),
        ]
        indexes = [models.Index(fields=["merchant", "status"], name="slack_comm_merchant_status")]

    def __str__(self):
        return f"{self.slack_user_id} ({self.status})"

    def local_copies_forget(self) -> None:
        storefront_flags.forget(self.merchant_id)


class SlackCommunityUser(models.Model):
    """A Slack member id held by one merchant's community row: the seeds' global uniqueness."""

    slack_user_id = models.CharField(max_length=32, primary_key=True)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    community_id = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "slack_community_user_ids"

    def __str__(self):
        return self.slack_user_id
