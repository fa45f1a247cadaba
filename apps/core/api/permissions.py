"""DRF permission: a view declares `required_scope`; anything undeclared is denied."""

from rest_framework.permissions import BasePermission

from apps.core import errors
from apps.core.models import StaffMember
from apps.core.rbac import has_scope

PUBLIC = "public"
STAFF = "staff"  # any authenticated staff member of the shop; finer checks in the service


class HasScope(BasePermission):
    def has_permission(self, request, view):
        scope = getattr(view, "required_scope", None)
        if scope == PUBLIC:
            return True
        if request.user is None:
            raise errors.AuthenticationFailed()
        if scope == STAFF:
            if not isinstance(request.user, StaffMember) or not request.user.is_active:
                raise errors.PermissionDenied()
            return True
        if scope is None or not has_scope(request.user, scope):
            raise errors.PermissionDenied()
        return True
