"""Fail-closed tenant scoping (django-scopes): a tenant query without an active merchant raises."""

from contextlib import contextmanager

from django_scopes import ScopedManager, scope, scopes_disabled  # noqa: F401  (re-exported)
from django_scopes.state import get_scope


def TenantManager(manager_class=None):
    """The default manager of every model that carries `merchant`."""
    if manager_class is None:
        return ScopedManager(merchant="merchant")
    return ScopedManager(_manager_class=manager_class, merchant="merchant")


@contextmanager
def merchant_scope(merchant):
    """Enter one merchant's scope. A missing merchant is an error, never 'no filter'."""
    if merchant is None:
        raise ValueError("merchant_scope needs a merchant")
    merchant_id = getattr(merchant, "pk", merchant)
    if not merchant_id:
        raise ValueError("merchant_scope needs a saved merchant")
    with scope(merchant=merchant_id):
        yield


def current_merchant_id():
    """The merchant id of the active scope, or None outside one."""
    value = get_scope().get("merchant")
    return value if isinstance(value, str) else None
