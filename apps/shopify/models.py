"""What LoyalNest keeps about its connection to each shop: tokens, the webhook inbox,
reconciliation watermarks and the state of metafield copies."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField
from apps.core.models import Customer, Merchant
from apps.core.tenancy import TenantManager


class ShopifyInstallation(models.Model):
    """The shop's offline access: an expiring access token and its rotating refresh token,
    both encrypted at rest (D5)."""

    id = PrefixedIdField(prefix="ins")
    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="shopify_installation")
    shop_gid = models.CharField(max_length=64, blank=True, default="")
    scopes = models.CharField(max_length=1000, blank=True, default="")
    access_token = EncryptedTextField(blank=True, default="")
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token = EncryptedTextField(blank=True, default="")
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    needs_reauth = models.BooleanField(default=False)
    reauth_reason = models.CharField(max_length=64, blank=True, default="")
    installed_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "shopify_installations"

    def __str__(self):
        return f"Shopify installation of {self.merchant_id}"


class WebhookStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    SKIPPED = "skipped", _("Skipped (older than what we have)")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """The webhook inbox: stored verbatim by the view, processed by a Celery task (A2, A3)."""

    id = PrefixedIdField(prefix="whk")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    webhook_id = models.CharField(max_length=128)
    event_id = models.CharField(max_length=128, blank=True, default="")
    topic = models.CharField(max_length=64)
    api_version = models.CharField(max_length=16, blank=True, default="")
    triggered_at = models.DateTimeField(null=True, blank=True)
    # Personal data (order and customer payloads): scrubbed by customers/redact and shop/redact.
    body = models.JSONField()
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # After a failure a retry can fix: not taken again before this time.
    retry_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "webhook_inbox"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "webhook_id"], name="webhook_inbox_delivery_unique"),
            models.CheckConstraint(condition=Q(status__in=WebhookStatus.values), name="webhook_inbox_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="idx_webhook_inbox_status"),
            models.Index(fields=["merchant", "topic", "received_at"], name="idx_webhook_inbox_topic"),
            # What a shop's drain task takes next: small, only the waiting rows.
            models.Index(
                fields=["merchant", "received_at"],
                name="idx_webhook_inbox_waiting",
                condition=Q(status="received"),
            ),
        ]

    def __str__(self):
        return f"{self.topic} {self.webhook_id}"


class SyncWatermark(models.Model):
    """How far reconciliation has read a resource (e.g. orders by updated_at) (A5)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    resource = models.CharField(max_length=32)
    watermark = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "shopify_sync_watermarks"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "resource"], name="shopify_sync_watermarks_unique"),
        ]

    def __str__(self):
        return f"{self.resource} up to {self.watermark:%Y-%m-%d %H:%M}"


class MetafieldCopy(models.Model):
    """The last value LoyalNest wrote to a customer's `$app:loyalnest` metafield, with Shopify's
    compareDigest, so a stale write is refused and a sweep can find copies that drifted (C6)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="metafield_copies")
    key = models.CharField(max_length=64)
    value = models.TextField()
    compare_digest = models.CharField(max_length=128, blank=True, default="")
    synced_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        db_table = "shopify_metafield_copies"
        constraints = [
            models.UniqueConstraint(fields=["customer", "key"], name="shopify_metafield_copies_unique"),
        ]

    def __str__(self):
        return f"{self.customer_id}.{self.key}"


class ShopifyRefund(models.Model):
    """A refund of an order, recorded once per Shopify refund id: the order's refunded amount
    is their sum, and each one reverses its share of the order's points exactly once (C5)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey("core.Order", on_delete=models.CASCADE, related_name="shopify_refunds")
    shopify_refund_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    refunded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "shopify_refunds"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "shopify_refund_id"], name="shopify_refunds_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="shopify_refunds_amount_non_negative"),
        ]
        indexes = [models.Index(fields=["order", "refunded_at"], name="idx_shopify_refunds_order")]

    def __str__(self):
        return f"refund {self.shopify_refund_id} of {self.order_id}"


class RedemptionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    ISSUED = "issued", _("Issued")
    FAILED = "failed", _("Failed (points returned)")


class RewardRedemption(models.Model):
    """A reward bought with points and the Shopify discount code that delivers it.

    Written as `pending` in the transaction that debits the points (the outbox row: the intent
    survives a crash between the debit and the Shopify call); `issued` once Shopify holds the
    code; `failed` when Shopify refused it for good, in the transaction that gives the points back.
    The code is not personal data: it only works for the customer it was made for.
    """

    id = PrefixedIdField(prefix="rdm")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="reward_redemptions", db_index=False)
    reward = models.ForeignKey("core.Reward", on_delete=models.PROTECT, related_name="redemptions", db_index=False)
    transaction = models.OneToOneField(
        "core.PointsTransaction", on_delete=models.PROTECT, related_name="reward_redemption"
    )
    code = models.CharField(max_length=32)
    locale = models.CharField(max_length=8, default="en")
    shopify_discount_id = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=16, choices=RedemptionStatus.choices, default=RedemptionStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "reward_redemptions"
        ordering = ["merchant", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="reward_redemptions_code_unique"),
            models.CheckConstraint(
                condition=Q(status__in=RedemptionStatus.values), name="reward_redemptions_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="idx_redemptions_customer"),
            # The sweep looks for pending rows untouched for a while (by updated_at).
            models.Index(fields=["updated_at"], name="idx_redemptions_pending", condition=Q(status="pending")),
        ]

    def __str__(self):
        return f"{self.code} ({self.status})"
