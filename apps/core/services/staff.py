"""Staff members and the roles → scopes mapping the owner edits."""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.core.models import ProgramSettings, StaffMember, StaffRole
from apps.core.rbac import ADMIN_SCOPES, MANAGE_ROLES, has_scope, role_scopes_for


@transaction.atomic
def staff_member_get_or_create(*, merchant, shopify_user_id: str, email: str = "", name: str = "") -> StaffMember:
    """The staff member behind a session token; the shop's first one becomes its owner."""
    staff = StaffMember.objects.filter(merchant=merchant, shopify_user_id=shopify_user_id).first()
    if staff is not None:
        return staff
    role = StaffRole.SUPPORT if StaffMember.objects.filter(merchant=merchant).exists() else StaffRole.OWNER
    try:
        with transaction.atomic():
            staff = StaffMember.objects.create(
                merchant=merchant, shopify_user_id=shopify_user_id, email=email, name=name, role=role
            )
    except IntegrityError:
        return StaffMember.objects.get(merchant=merchant, shopify_user_id=shopify_user_id)
    audit_record(merchant=merchant, actor=None, action="staff_member_added", target=staff, metadata={"role": role})
    return staff


def _require_owner(actor):
    if not has_scope(actor, MANAGE_ROLES):
        raise PermissionDenied(_("Only the shop owner can change roles."))


@transaction.atomic
def role_scopes_update(*, merchant, actor, role_scopes: dict[str, list[str]]) -> dict[str, list[str]]:
    """Replace the scopes of the manager, marketer and support roles (the owner keeps all)."""
    _require_owner(actor)
    errors = {}
    cleaned = {}
    for role, scopes in role_scopes.items():
        if role not in StaffRole.values or role == StaffRole.OWNER:
            errors[role] = [str(_("This role cannot be edited."))]
            continue
        unknown = sorted(set(scopes) - set(ADMIN_SCOPES))
        if unknown:
            errors[role] = [str(_("Unknown scope: %(scopes)s.") % {"scopes": ", ".join(unknown)})]
            continue
        cleaned[role] = sorted(set(scopes))
    if errors:
        raise ValidationFailed(details={"roles": errors})
    settings_row, _created = ProgramSettings.objects.select_for_update().get_or_create(merchant=merchant)
    before = role_scopes_for(merchant.pk)
    settings_row.role_scopes = {**{k: v for k, v in before.items() if k != StaffRole.OWNER}, **cleaned}
    settings_row.save(update_fields=["role_scopes", "updated_at"])
    audit_record(
        merchant=merchant,
        actor=actor,
        action="rbac_roles_updated",
        target=settings_row,
        metadata={"before": before, "after": settings_row.role_scopes},
    )
    return role_scopes_for(merchant.pk)


@transaction.atomic
def staff_member_set_role(*, merchant, actor, staff_id: str, role: str) -> StaffMember:
    """Give a staff member another role. The owner cannot demote themself."""
    _require_owner(actor)
    if role not in StaffRole.values:
        raise ValidationFailed(details={"role": [str(_("Unknown role."))]})
    staff = StaffMember.objects.select_for_update().filter(merchant=merchant, pk=staff_id).first()
    if staff is None:
        raise NotFound(_("Staff member not found."))
    if staff.pk == actor.pk and role != StaffRole.OWNER:
        raise ValidationFailed(details={"role": [str(_("You cannot remove your own owner role."))]})
    before = staff.role
    staff.role = role
    staff.save(update_fields=["role", "updated_at"])
    audit_record(
        merchant=merchant, actor=actor, action="staff_role_changed", target=staff, metadata={"from": before, "to": role}
    )
    return staff
