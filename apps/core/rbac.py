"""Role-based access: the specification's scopes, roles mapped to scopes per merchant.

Permissions are `rules` predicates over a principal: a `StaffMember` (merchant admin) or a
`ShopperPrincipal` (a storefront customer verified by the app proxy).
"""

from dataclasses import dataclass

import rules

from .models import DEFAULT_ROLE_SCOPES, Customer, Merchant, ProgramSettings, StaffMember, StaffRole
from .tenancy import scopes_disabled

ADMIN_SCOPES = (
    "admin:analytics",
    "admin:points",
    "admin:referrals",
    "admin:gamification",
    "admin:frontend",
    "admin:community",
)
CUSTOMER_SCOPES = ("customer:frontend",)
ALL_SCOPES = ADMIN_SCOPES + CUSTOMER_SCOPES
MANAGE_ROLES = "rbac:manage_roles"


@dataclass(frozen=True)
class ShopperPrincipal:
    """A storefront shopper, identified only by the verified `logged_in_customer_id`."""

    merchant: Merchant
    customer: Customer | None

    is_authenticated = True


def role_scopes_for(merchant_id: str) -> dict[str, list[str]]:
    with scopes_disabled():
        stored = ProgramSettings.objects.filter(merchant_id=merchant_id).values_list("role_scopes", flat=True).first()
    merged = {role: list(scopes) for role, scopes in DEFAULT_ROLE_SCOPES.items()}
    merged.update(stored or {})
    # The owner always holds every admin scope: nobody can lock the shop out of its own app.
    merged[StaffRole.OWNER] = list(ADMIN_SCOPES)
    return merged


def principal_scopes(principal) -> frozenset[str]:
    if isinstance(principal, StaffMember):
        if not principal.is_active:
            return frozenset()
        cached = getattr(principal, "_scopes_cache", None)
        if cached is None:
            cached = frozenset(role_scopes_for(principal.merchant_id).get(principal.role, ()))
            principal._scopes_cache = cached
        return cached
    if isinstance(principal, ShopperPrincipal):
        return frozenset(CUSTOMER_SCOPES) if principal.customer is not None else frozenset()
    return frozenset()


def _scope_predicate(scope: str):
    @rules.predicate(name=f"holds {scope}")
    def holds(principal):
        return scope in principal_scopes(principal)

    return holds


@rules.predicate
def is_owner(principal):
    return isinstance(principal, StaffMember) and principal.is_active and principal.role == StaffRole.OWNER


def register_rules(ruleset=rules.permissions.permissions):
    for scope in ALL_SCOPES:
        if not ruleset.rule_exists(scope):
            ruleset.add_rule(scope, _scope_predicate(scope))
    if not ruleset.rule_exists(MANAGE_ROLES):
        ruleset.add_rule(MANAGE_ROLES, is_owner)


def has_scope(principal, scope: str) -> bool:
    return rules.has_perm(scope, principal)
