"""Wallet passes: every export (the seeds' `wallet_exports`), the passes that stay current, and
the Apple devices registered for their updates."""

import json
import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField
from apps.core.models import Customer, Merchant
from apps.core.tenancy import TenantManager


class WalletType(models.TextChoices):
    APPLE = "apple", _("Apple Wallet")
    GOOGLE = "google", _("Google Wallet")


class ExportStatus(models.TextChoices):
    EXPORTED = "exported", _("Exported")
    FAILED = "failed", _("Failed")


class PushStatus(models.TextChoices):
    CURRENT = "current", _("Up to date")
    PENDING = "pending", _("Update pending")
    FAILED = "failed", _("Update failed")


def authentication_token_new() -> str:
    """PassKit wants at least 16 characters; 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


class WalletExport(models.Model):
    """One export request (seeds: `wallet_exports`, hash-partitioned by merchant on PostgreSQL).

    `pass_data` — the balance, tier, referral code and name put on the pass — is encrypted
    (AES-256-GCM with a key id, re-encrypted by `rotate_encryption_keys`). The pass file itself
    is never stored: it is built when the signed `pass_url` is fetched.
    """

    id = PrefixedIdField(prefix="wex", db_column="export_id")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    wallet_type = models.CharField(max_length=8, choices=WalletType.choices)
    status = models.CharField(max_length=8, choices=ExportStatus.choices, default=ExportStatus.EXPORTED)
    error_code = models.CharField(max_length=64, blank=True, default="")
    locale = models.CharField(max_length=8, default="en")
    pass_data = EncryptedTextField(blank=True, default="")
    serial_number = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "wallet_exports"
        constraints = [
            models.CheckConstraint(condition=Q(wallet_type__in=["apple", "google"]), name="wallet_exports_wallet_type"),
        ]
        # idx_wallet_exports_customer_id (the seeds' name) is created in migration 0002.
        indexes = [models.Index(fields=["merchant", "created_at"], name="wallet_exports_merchant_time")]

    def __str__(self):
        return self.pk

    @property
    def pass_content(self) -> dict:
        return json.loads(self.pass_data) if self.pass_data else {}


class WalletPass(models.Model):
    """The one pass of a customer in one wallet, kept current after every balance, tier or
    referral-code change. Its serial number is Apple's `serialNumber` and Google's object id."""

    id = PrefixedIdField(prefix="wps", db_column="serial_number")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    wallet_type = models.CharField(max_length=8, choices=WalletType.choices)
    # PassKit web service credential, embedded in the pass; encrypted at rest.
    authentication_token = EncryptedTextField(default=authentication_token_new)
    # What the last built pass showed; a change of any of them is an update to push.
    content_hash = models.CharField(max_length=64, blank=True, default="")
    push_status = models.CharField(max_length=8, choices=PushStatus.choices, default=PushStatus.CURRENT)
    push_attempts = models.PositiveSmallIntegerField(default=0)
    last_push_error = models.CharField(max_length=255, blank=True, default="")
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # PassKit's "passes updated since" tag and Last-Modified.
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantManager()

    class Meta:
        db_table = "wallet_passes"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "customer", "wallet_type"], name="wallet_passes_one_per_wallet"
            ),
            models.CheckConstraint(condition=Q(wallet_type__in=["apple", "google"]), name="wallet_passes_wallet_type"),
        ]
        indexes = [models.Index(fields=["merchant", "push_status"], name="wallet_passes_push_status")]

    def __str__(self):
        return self.pk


class WalletDevice(models.Model):
    """An Apple device registered for a pass's updates (PassKit web service)."""

    id = PrefixedIdField(prefix="wdv")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    wallet_pass = models.ForeignKey(WalletPass, on_delete=models.CASCADE, related_name="devices")
    device_library_identifier = models.CharField(max_length=128)
    push_token = EncryptedTextField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantManager()

    class Meta:
        db_table = "wallet_devices"
        constraints = [
            models.UniqueConstraint(
                fields=["wallet_pass", "device_library_identifier"], name="wallet_devices_one_per_pass"
            ),
        ]
        indexes = [models.Index(fields=["device_library_identifier"], name="wallet_devices_device")]

    def __str__(self):
        return self.pk


class WalletPassLog(models.Model):
    """Messages Apple devices send to the PassKit log endpoint (errors they met with a pass)."""

    id = models.BigAutoField(primary_key=True)
    message = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "wallet_pass_logs"

    def __str__(self):
        return self.message[:80]
