"""The GDPR erasure log (ids only): re-applied after any restore (RELIABILITY F1)."""

from django.db import models


class ErasureRecord(models.Model):
    """One erasure done (`customers/redact` or `shop/redact`). Ids only, no personal data.

    No foreign keys on purpose: the record must outlive the rows it names (shop/redact deletes
    every tenant row) and survive into a database restored from an older backup."""

    KIND_CUSTOMER = "customer"
    KIND_SHOP = "shop"
    KIND_CHOICES = [(KIND_CUSTOMER, "customer"), (KIND_SHOP, "shop")]

    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    merchant_ref = models.CharField(max_length=64)
    customer_ref = models.CharField(max_length=64, blank=True, default="")
    shopify_customer_ref = models.CharField(max_length=64, blank=True, default="")
    erased_at = models.DateTimeField()

    class Meta:
        db_table = "backups_erasure_log"
        ordering = ["erased_at", "id"]
        indexes = [models.Index(fields=["erased_at"], name="backups_erasure_at_idx")]

    def __str__(self) -> str:
        return f"{self.kind} erasure {self.merchant_ref}/{self.customer_ref} at {self.erased_at:%Y-%m-%d}"

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "merchant_ref": self.merchant_ref,
            "customer_ref": self.customer_ref,
            "shopify_customer_ref": self.shopify_customer_ref,
            "erased_at": self.erased_at.isoformat(),
        }
