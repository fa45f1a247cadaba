"""Write services of the loyalty core. Keyword-only, merchant first, one transaction each."""

from .ledger import (
    Earn,
    LedgerResult,
    earning_rate,
    ledger_balance,
    points_adjust,
    points_earn,
    points_earn_many,
    points_for_amount,
    points_redeem,
    points_reverse,
    tier_for,
)
from .referrals import (
    SelfReferralRefused,
    referral_code_new,
    referral_link_get_or_create,
    referral_link_resolve,
    referral_resolver_register,
)
from .shoppers import customer_get_or_create_by_shopify_id, shopper_expression_get
from .staff import role_scopes_update, staff_member_get_or_create, staff_member_set_role

__all__ = [
    "Earn",
    "LedgerResult",
    "SelfReferralRefused",
    "customer_get_or_create_by_shopify_id",
    "earning_rate",
    "ledger_balance",
    "points_adjust",
    "points_earn",
    "points_earn_many",
    "points_for_amount",
    "points_redeem",
    "points_reverse",
    "referral_code_new",
    "referral_link_get_or_create",
    "referral_link_resolve",
    "referral_resolver_register",
    "role_scopes_update",
    "shopper_expression_get",
    "staff_member_get_or_create",
    "staff_member_set_role",
    "tier_for",
]
