"""RBAC: scopes per role, editable by the owner; a denied call is a 403 that changes nothing."""

import json

import pytest

from apps.core.models import AuditLog, Customer, PointsTransaction, ProgramSettings, StaffMember
from apps.core.rbac import ADMIN_SCOPES, has_scope, role_scopes_for
from apps.core.services import points_earn
from tests.factories import CustomerFactory, StaffMemberFactory
from tests.shopify_helpers import auth_header


@pytest.fixture
def marketer(merchant, owner):
    return StaffMemberFactory(merchant=merchant, role="marketer", shopify_user_id="90002")


@pytest.fixture
def funded(merchant):
    customer = CustomerFactory(merchant=merchant)
    points_earn(merchant=merchant, customer=customer, points=500, idempotency_key="seed")
    return customer


def _put(api, staff, path, payload):
    return api.put(path, data=json.dumps(payload), content_type="application/json", **auth_header(staff))


def _snapshot(merchant):
    return (
        list(Customer.objects.filter(merchant=merchant).values_list("id", "points_balance")),
        PointsTransaction.objects.filter(merchant=merchant).count(),
        AuditLog.objects.filter(merchant=merchant).count(),
        ProgramSettings.objects.get(merchant=merchant).role_scopes,
        list(StaffMember.objects.filter(merchant=merchant).values_list("id", "role")),
    )


def test_default_role_scopes(merchant, owner, marketer):
    assert set(ADMIN_SCOPES) <= {s for s in ADMIN_SCOPES if has_scope(owner, s)}
    assert has_scope(marketer, "admin:analytics") and not has_scope(marketer, "admin:points")
    assert not has_scope(marketer, "customer:frontend")


def test_a_marketer_cannot_move_points(api, merchant, marketer, funded, other_merchant):
    before = _snapshot(merchant)

    response = api.post(
        "/v1/api/points/adjust",
        data=json.dumps({"customer_id": funded.pk, "points": 100, "reason": "x"}),
        content_type="application/json",
        **auth_header(marketer),
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert _snapshot(merchant) == before


def test_an_inactive_staff_member_is_refused(api, merchant, owner, funded):
    owner.is_active = False
    owner.save()

    assert api.get("/v1/api/customers", **auth_header(owner)).status_code == 403


def test_the_owner_grants_a_scope_and_it_takes_effect(api, merchant, owner, marketer, funded, other_merchant):
    response = _put(api, owner, "/v1/api/rbac/roles", {"roles": {"marketer": ["admin:analytics", "admin:points"]}})

    assert response.status_code == 200
    assert response.json()["roles"]["marketer"] == ["admin:analytics", "admin:points"]
    assert api.get("/v1/api/customers", **auth_header(marketer)).status_code == 200
    assert AuditLog.objects.filter(merchant=merchant, action="rbac_roles_updated", actor=owner).count() == 1
    # The other shop's roles are its own.
    assert "admin:points" not in role_scopes_for(other_merchant["merchant"].pk)["marketer"]


def test_only_the_owner_edits_roles(api, merchant, owner, marketer):
    before = _snapshot(merchant)

    response = _put(api, marketer, "/v1/api/rbac/roles", {"roles": {"marketer": list(ADMIN_SCOPES)}})

    assert response.status_code == 403
    assert _snapshot(merchant) == before


@pytest.mark.parametrize(
    "roles",
    [{"owner": []}, {"marketer": ["admin:everything"]}, {"janitor": ["admin:points"]}, {"marketer": "admin:points"}],
    ids=["owner-locked", "unknown-scope", "unknown-role", "not-a-list"],
)
def test_invalid_role_edits_are_refused(api, merchant, owner, roles):
    before = _snapshot(merchant)

    response = _put(api, owner, "/v1/api/rbac/roles", {"roles": roles})

    assert response.status_code == 400
    assert _snapshot(merchant) == before


def test_the_owner_changes_a_staff_role(api, merchant, owner, marketer):
    response = _put(api, owner, f"/v1/api/rbac/staff/{marketer.pk}", {"role": "manager"})

    assert response.status_code == 200
    marketer.refresh_from_db()
    assert marketer.role == "manager"


def test_the_owner_cannot_demote_themself(api, merchant, owner):
    response = _put(api, owner, f"/v1/api/rbac/staff/{owner.pk}", {"role": "support"})

    assert response.status_code == 400
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_a_non_owner_cannot_promote_themself(api, merchant, owner, marketer):
    before = _snapshot(merchant)

    response = _put(api, marketer, f"/v1/api/rbac/staff/{marketer.pk}", {"role": "owner"})

    assert response.status_code == 403
    assert _snapshot(merchant) == before


def test_staff_of_another_shop_cannot_be_changed(api, merchant, owner, other_merchant):
    foreign = other_merchant["owner"]

    response = _put(api, owner, f"/v1/api/rbac/staff/{foreign.pk}", {"role": "support"})

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == "owner"
