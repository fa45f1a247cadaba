"""The audit trail: one row per meaningful change, written inside the change's transaction."""

from .models import AuditLog, StaffMember


def audit_record(*, merchant, actor=None, action: str, target=None, metadata=None) -> AuditLog:
    """Record `action` on `target` by `actor` (a StaffMember, a Django staff user or None)."""
    entry = audit_entry(merchant=merchant, actor=actor, action=action, target=target, metadata=metadata)
    entry.save(force_insert=True)
    return entry


def audit_entry(*, merchant, actor=None, action: str, target=None, metadata=None) -> AuditLog:
    """The unsaved row `audit_record` would write — for callers that write many with bulk_create."""
    staff_member = actor if isinstance(actor, StaffMember) else None
    staff_user = actor if actor is not None and staff_member is None else None
    return AuditLog(
        merchant=merchant,
        action=action,
        actor=staff_member,
        staff_user=staff_user,
        target_type=target._meta.db_table if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        metadata=metadata or {},
    )
