"""Django admin for LoyalNest staff over the loyalty core (DESIGN "Who uses it").

`base` holds the building blocks (personal-data masking and audit, typed filters, cheap
pagination); `loyalty` registers one admin per core model.
"""

from .base import MASK, PII_PERMISSION, has_pii_permission
from .loyalty import (
    AuditLogAdmin,
    CustomerAdmin,
    IdempotencyRecordAdmin,
    MerchantAdmin,
    OrderAdmin,
    PointsTransactionAdmin,
    ProgramSettingsAdmin,
    ReferralLinkAdmin,
    RewardAdmin,
    StaffMemberAdmin,
    VipTierAdmin,
)

__all__ = [
    "MASK",
    "PII_PERMISSION",
    "AuditLogAdmin",
    "CustomerAdmin",
    "IdempotencyRecordAdmin",
    "MerchantAdmin",
    "OrderAdmin",
    "PointsTransactionAdmin",
    "ProgramSettingsAdmin",
    "ReferralLinkAdmin",
    "RewardAdmin",
    "StaffMemberAdmin",
    "VipTierAdmin",
    "has_pii_permission",
]
