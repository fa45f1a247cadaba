"""Write services of the loyalty core. Keyword-only, merchant first, one transaction each."""

from .ledger import (
    LedgerResult,
    ledger_balance,
    points_adjust,
    points_earn,
    points_for_amount,
    points_redeem,
    points_reverse,
    tier_for,
)
from .staff import role_scopes_update, staff_member_get_or_create, staff_member_set_role

__all__ = [
    "LedgerResult",
    "ledger_balance",
    "points_adjust",
    "points_earn",
    "points_for_amount",
    "points_redeem",
    "points_reverse",
    "role_scopes_update",
    "staff_member_get_or_create",
    "staff_member_set_role",
    "tier_for",
]
