"""Django admin for LoyalNest staff: every page loads, the ledger and audit trail are read-only,
personal data is permission-gated and its viewing audit-logged (RELIABILITY B4)."""

import json

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse
from django_scopes import scope

from apps.core.admin import MASK
from apps.core.admin.base import EstimatedCountPaginator
from apps.core.audit import audit_record
from apps.core.models import (
    AuditLog,
    Customer,
    IdempotencyRecord,
    Merchant,
    Order,
    PointsTransaction,
    ProgramSettings,
    ReferralLink,
    Reward,
    StaffMember,
    VipTier,
)
from apps.core.services import points_earn
from tests.factories import CustomerFactory, OrderFactory, RewardFactory, StaffMemberFactory, VipTierFactory

CUSTOMER_EMAIL = "augusta.lovelace-byron@example.com"
CUSTOMER_FIRST = "Augusta"
CUSTOMER_LAST = "Lovelace-Byron"
STAFF_EMAIL = "grace.hopperton@example.com"
STAFF_NAME = "Grace Hopperton"
PII = (CUSTOMER_EMAIL, CUSTOMER_FIRST, CUSTOMER_LAST, STAFF_EMAIL, STAFF_NAME)


def _seed(merchant, n):
    """One row of every core model for `merchant`; the personal data is distinct per merchant."""
    staff = StaffMemberFactory(
        merchant=merchant,
        shopify_user_id=f"7{n}",
        email=f"{n}.{STAFF_EMAIL}",
        name=f"{STAFF_NAME} {n}",
        role="owner",
    )
    tier = VipTierFactory(merchant=merchant, min_lifetime_points=1000)
    customer = CustomerFactory(
        merchant=merchant,
        email=f"{n}.{CUSTOMER_EMAIL}",
        first_name=f"{CUSTOMER_FIRST}{n}",
        last_name=f"{CUSTOMER_LAST}{n}",
    )
    order = OrderFactory(merchant=merchant, customer=customer)
    reward = RewardFactory(merchant=merchant)
    entry = points_earn(
        merchant=merchant, customer=customer, points=120, idempotency_key=f"order:{order.pk}", order=order
    ).transaction
    link = ReferralLink.objects.create(merchant=merchant, customer=customer, code=f"CODE{n}XYZ")
    audit = audit_record(merchant=merchant, actor=staff, action="test_seeded", target=customer, metadata={"n": n})
    idempotency = IdempotencyRecord.objects.create(
        merchant=merchant,
        key=f"key-{n}",
        method="POST",
        path="/v1/api/points/adjust",
        request_fingerprint="f" * 64,
        response_status=200,
        response_body={"status": "ok"},
    )
    return {
        Merchant: merchant,
        StaffMember: staff,
        VipTier: tier,
        Customer: customer,
        Order: order,
        Reward: reward,
        PointsTransaction: entry,
        ReferralLink: link,
        ProgramSettings: ProgramSettings.objects.get(merchant=merchant),
        AuditLog: audit,
        IdempotencyRecord: idempotency,
    }


@pytest.fixture
def tenants(merchant, other_merchant):
    return [_seed(merchant, 1), _seed(other_merchant["merchant"], 2)]


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@loyalnest.test", "pw")


def _staff_user(django_user_model, username, *codenames):
    user = django_user_model.objects.create_user(username, f"{username}@loyalnest.test", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="core", codename__in=codenames))
    return user


@pytest.fixture
def support_viewer(django_user_model):
    """LoyalNest support: may look at customers and staff, without the personal data permission."""
    return _staff_user(django_user_model, "support", "view_customer", "view_staffmember")


@pytest.fixture
def privacy_officer(django_user_model):
    return _staff_user(django_user_model, "privacy", "view_customer", "view_staffmember", "view_customer_pii")


@pytest.fixture
def bare_staff(django_user_model):
    return _staff_user(django_user_model, "bare")


def _client(client, user):
    client.force_login(user)
    return client


def _url(model, view, *args):
    return reverse(f"admin:core_{model._meta.model_name}_{view}", args=args)


ALL_MODELS = [
    Merchant,
    StaffMember,
    Customer,
    Order,
    PointsTransaction,
    VipTier,
    Reward,
    ReferralLink,
    ProgramSettings,
    AuditLog,
    IdempotencyRecord,
]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda model: model.__name__)
def test_every_changelist_and_change_page_loads_for_a_superuser(client, superuser, tenants, model):
    client = _client(client, superuser)

    listing = client.get(_url(model, "changelist"))

    assert listing.status_code == 200
    for rows in tenants:
        assert str(rows[model].pk) in listing.content.decode()
        page = client.get(_url(model, "change", rows[model].pk))
        assert page.status_code == 200


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if m is not Merchant], ids=lambda model: model.__name__)
def test_the_merchant_filter_shows_one_merchants_rows(client, superuser, tenants, model):
    mine, theirs = tenants
    client = _client(client, superuser)

    by_domain = client.get(_url(model, "changelist"), {"merchant": mine[Merchant].shop_domain})
    by_id = client.get(_url(model, "changelist"), {"merchant": mine[Merchant].pk})

    for response in (by_domain, by_id):
        assert response.status_code == 200
        content = response.content.decode()
        # Compare the rows' change links, not bare ids: integer ids also occur inside other text.
        assert _url(model, "change", quote(mine[model].pk)) in content
        assert _url(model, "change", quote(theirs[model].pk)) not in content


def test_search_by_id_finds_exactly_that_row(client, superuser, tenants):
    mine, theirs = tenants
    client = _client(client, superuser)

    response = client.get(_url(PointsTransaction, "changelist"), {"q": mine[PointsTransaction].idempotency_key})

    assert response.status_code == 200
    assert mine[PointsTransaction].pk in response.content.decode()
    assert theirs[PointsTransaction].pk not in response.content.decode()


def _ledger_snapshot():
    return list(PointsTransaction.objects.order_by("id").values_list("id", "points", "balance_after", "reason"))


def _audit_snapshot():
    return list(AuditLog.objects.order_by("id").values_list("id", "action", "target_id", "metadata"))


def test_the_ledger_cannot_be_added_changed_or_deleted_even_by_a_superuser(client, superuser, tenants):
    entry = tenants[0][PointsTransaction]
    client = _client(client, superuser)
    before = _ledger_snapshot()

    change = client.post(
        _url(PointsTransaction, "change", entry.pk),
        {"points": "999", "balance_after": "999", "reason": "edited", "kind": "adjust"},
    )
    delete = client.post(_url(PointsTransaction, "delete", entry.pk), {"post": "yes"})
    add = client.post(_url(PointsTransaction, "add"), {"points": "5"})
    bulk = client.post(
        _url(PointsTransaction, "changelist"), {"action": "delete_selected", "_selected_action": [entry.pk]}
    )

    assert change.status_code == 403
    assert delete.status_code == 403
    assert add.status_code == 403
    assert bulk.status_code in (200, 302)  # no such action: nothing happens
    assert _ledger_snapshot() == before
    page = client.get(_url(PointsTransaction, "change", entry.pk)).content.decode()
    assert 'name="_save"' not in page
    assert _url(PointsTransaction, "delete", entry.pk) not in page


def test_the_audit_log_cannot_be_added_changed_or_deleted_even_by_a_superuser(client, superuser, tenants):
    row = tenants[0][AuditLog]
    client = _client(client, superuser)
    before = _audit_snapshot()

    change = client.post(_url(AuditLog, "change", row.pk), {"action": "tampered", "target_id": "x"})
    delete = client.post(_url(AuditLog, "delete", row.pk), {"post": "yes"})
    add = client.post(_url(AuditLog, "add"), {"action": "forged"})
    bulk = client.post(_url(AuditLog, "changelist"), {"action": "delete_selected", "_selected_action": [row.pk]})

    assert change.status_code == 403
    assert delete.status_code == 403
    assert add.status_code == 403
    assert bulk.status_code in (200, 302)
    assert _audit_snapshot() == before


def _assert_no_personal_data(content: str):
    for value in PII:
        assert value not in content


def test_personal_data_is_masked_without_the_permission(client, support_viewer, tenants):
    client = _client(client, support_viewer)
    customer = tenants[0][Customer]
    staff = tenants[0][StaffMember]
    before = AuditLog.objects.count()

    pages = [
        client.get(_url(Customer, "changelist")),
        client.get(_url(Customer, "change", customer.pk)),
        client.get(_url(Customer, "history", customer.pk)),
        client.get(_url(StaffMember, "changelist")),
        client.get(_url(StaffMember, "change", staff.pk)),
        client.get(_url(StaffMember, "history", staff.pk)),
    ]

    for page in pages:
        assert page.status_code == 200
        _assert_no_personal_data(page.content.decode())
    assert MASK in pages[0].content.decode()
    assert MASK in pages[1].content.decode()
    assert customer.pk in pages[0].content.decode()
    assert AuditLog.objects.count() == before


def test_personal_data_is_not_searchable_without_the_permission(client, support_viewer, tenants):
    client = _client(client, support_viewer)
    customer = tenants[0][Customer]
    before = AuditLog.objects.count()

    response = client.get(_url(Customer, "changelist"), {"q": customer.email})

    assert response.status_code == 200
    assert customer.pk not in response.content.decode()
    assert AuditLog.objects.count() == before


def test_personal_data_is_shown_with_the_permission(client, privacy_officer, tenants):
    client = _client(client, privacy_officer)
    customer = tenants[0][Customer]
    staff = tenants[0][StaffMember]

    listing = client.get(_url(Customer, "changelist")).content.decode()
    detail = client.get(_url(Customer, "change", customer.pk)).content.decode()
    staff_detail = client.get(_url(StaffMember, "change", staff.pk)).content.decode()

    assert customer.email in listing and customer.last_name in listing
    assert customer.email in detail and customer.first_name in detail and customer.last_name in detail
    assert staff.email in staff_detail and staff.name in staff_detail


@pytest.mark.parametrize("user_fixture", ["privacy_officer", "superuser"])
def test_opening_a_customer_with_the_permission_writes_one_audit_row(client, request, tenants, user_fixture):
    user = request.getfixturevalue(user_fixture)
    client = _client(client, user)
    customer = tenants[1][Customer]

    response = client.get(_url(Customer, "change", customer.pk))

    assert response.status_code == 200
    rows = list(AuditLog.objects.filter(action="customer_pii_viewed"))
    assert len(rows) == 1
    row = rows[0]
    assert row.merchant_id == customer.merchant_id
    assert row.staff_user_id == user.pk
    assert row.actor_id is None
    assert (row.target_type, row.target_id) == ("users", customer.pk)
    _assert_no_personal_data(json.dumps(row.metadata))
    assert customer.email not in json.dumps(row.metadata)


def test_opening_a_staff_member_with_the_permission_is_audited(client, privacy_officer, tenants):
    client = _client(client, privacy_officer)
    staff = tenants[0][StaffMember]

    client.get(_url(StaffMember, "change", staff.pk))

    rows = list(AuditLog.objects.filter(action="staff_member_pii_viewed"))
    assert [(row.target_id, row.merchant_id, row.staff_user_id) for row in rows] == [
        (staff.pk, staff.merchant_id, privacy_officer.pk)
    ]


def test_searching_by_email_with_the_permission_finds_and_audits(client, privacy_officer, tenants):
    client = _client(client, privacy_officer)
    mine, theirs = tenants

    response = client.get(_url(Customer, "changelist"), {"q": mine[Customer].email.upper()})

    content = response.content.decode()
    assert response.status_code == 200
    assert mine[Customer].pk in content
    assert theirs[Customer].pk not in content
    rows = list(AuditLog.objects.filter(action="customer_pii_viewed"))
    assert [(row.target_id, row.merchant_id, row.metadata["source"]) for row in rows] == [
        (mine[Customer].pk, mine[Merchant].pk, "admin_search")
    ]
    _assert_no_personal_data(json.dumps(rows[0].metadata))


def test_listing_without_an_email_search_writes_no_audit_row(client, privacy_officer, tenants):
    client = _client(client, privacy_officer)

    client.get(_url(Customer, "changelist"), {"q": tenants[0][Customer].shopify_customer_id})

    assert not AuditLog.objects.filter(action="customer_pii_viewed").exists()


def _everything():
    return (
        list(Merchant.objects.order_by("id").values_list("id", "industry", "primary_locale", "name")),
        list(ProgramSettings.objects.order_by("id").values_list("id", "signup_points", "role_scopes")),
        list(Customer.objects.order_by("id").values_list("id", "email", "points_balance")),
        list(Reward.objects.order_by("id").values_list("id", "is_active")),
        _ledger_snapshot(),
        _audit_snapshot(),
    )


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda model: model.__name__)
def test_a_staff_user_without_model_permissions_gets_403_and_changes_nothing(client, bare_staff, tenants, model):
    client = _client(client, bare_staff)
    row = tenants[0][model]
    before = _everything()

    responses = [
        client.get(_url(model, "changelist")),
        client.get(_url(model, "change", row.pk)),
        client.post(_url(model, "change", row.pk), {"industry": "fashion", "is_active": "", "signup_points": "7"}),
        client.post(_url(model, "delete", row.pk), {"post": "yes"}),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    assert _everything() == before


def test_a_viewer_cannot_change_a_customer(client, support_viewer, tenants):
    client = _client(client, support_viewer)
    customer = tenants[0][Customer]
    before = _everything()

    response = client.post(_url(Customer, "change", customer.pk), {"email": "", "locale": "de"})

    assert response.status_code == 403
    assert _everything() == before


def _settings_form(settings_row, **overrides):
    data = {
        "points_per_currency_unit": str(settings_row.points_per_currency_unit),
        "signup_points": str(settings_row.signup_points),
        "referral_advocate_points": str(settings_row.referral_advocate_points),
        "referral_friend_points": str(settings_row.referral_friend_points),
        "multi_store_config": json.dumps(settings_row.multi_store_config),
        "theme_extension_config": json.dumps(settings_row.theme_extension_config),
        "role_scopes": json.dumps(settings_row.role_scopes),
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "role_scopes",
    [
        {"support": ["admin:points", "admin:everything"]},
        {"support": ["customer:frontend"]},
        {"janitor": ["admin:points"]},
        {"support": "admin:points"},
        {"owner": ["admin:points"]},
        ["admin:points"],
    ],
)
def test_program_settings_refuse_unknown_roles_and_scopes(client, superuser, tenants, role_scopes):
    settings_row = tenants[0][ProgramSettings]
    client = _client(client, superuser)
    before = _everything()

    response = client.post(
        _url(ProgramSettings, "change", settings_row.pk),
        _settings_form(settings_row, role_scopes=json.dumps(role_scopes), signup_points="50"),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["role_scopes"]
    assert _everything() == before


def test_program_settings_refuse_a_config_that_is_not_an_object(client, superuser, tenants):
    settings_row = tenants[0][ProgramSettings]
    client = _client(client, superuser)
    before = _everything()

    response = client.post(
        _url(ProgramSettings, "change", settings_row.pk), _settings_form(settings_row, multi_store_config="[1, 2]")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["multi_store_config"]
    assert _everything() == before


def test_program_settings_save_valid_scopes_and_audit_the_change(client, superuser, tenants):
    mine, theirs = tenants
    settings_row = mine[ProgramSettings]
    client = _client(client, superuser)
    theirs_before = ProgramSettings.objects.get(pk=theirs[ProgramSettings].pk).role_scopes

    response = client.post(
        _url(ProgramSettings, "change", settings_row.pk),
        _settings_form(
            settings_row,
            role_scopes=json.dumps({"support": ["admin:referrals", "admin:points", "admin:points"]}),
            signup_points="50",
        ),
    )

    assert response.status_code == 302
    settings_row.refresh_from_db()
    assert settings_row.role_scopes == {"support": ["admin:points", "admin:referrals"]}
    assert settings_row.signup_points == 50
    assert ProgramSettings.objects.get(pk=theirs[ProgramSettings].pk).role_scopes == theirs_before
    row = AuditLog.objects.get(action="program_settings_updated")
    assert row.merchant_id == mine[Merchant].pk
    assert row.staff_user_id == superuser.pk
    assert row.metadata["fields"] == ["role_scopes", "signup_points"]
    assert row.metadata["role_scopes"]["after"] == {"support": ["admin:points", "admin:referrals"]}


def test_a_superuser_may_correct_a_merchants_industry_and_it_is_audited(client, superuser, tenants):
    merchant = tenants[0][Merchant]
    client = _client(client, superuser)

    response = client.post(_url(Merchant, "change", merchant.pk), {"industry": "fashion", "primary_locale": "de"})

    assert response.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.industry, merchant.primary_locale) == ("fashion", "de")
    row = AuditLog.objects.get(action="merchant_updated")
    assert row.metadata == {"source": "django_admin", "fields": ["industry", "primary_locale"]}


def test_the_customer_changelist_does_not_count_the_whole_table(
    client, superuser, tenants, django_assert_max_num_queries
):
    client = _client(client, superuser)
    CustomerFactory.create_batch(30, merchant=tenants[0][Merchant])

    with django_assert_max_num_queries(8):
        response = client.get(_url(Customer, "changelist"))

    assert response.status_code == 200


def test_the_typed_filter_keeps_the_other_filters(client, superuser, tenants):
    client = _client(client, superuser)

    response = client.get(_url(Customer, "changelist"), {"lifecycle_stage": "vip"})

    content = response.content.decode()
    assert '<input type="hidden" name="lifecycle_stage" value="vip">' in content
    assert 'name="merchant"' in content


def test_an_unfiltered_large_list_uses_the_planner_estimate(tenants):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE users")

    class EveryTableIsLarge(EstimatedCountPaginator):
        estimate_above = 0

    exact = Customer.objects.count()
    CustomerFactory.create_batch(3, merchant=tenants[0][Merchant])

    assert EveryTableIsLarge(Customer.objects.order_by("id"), 50).count == exact  # from statistics
    assert EveryTableIsLarge(Customer.objects.filter(merchant=tenants[0][Merchant]), 50).count == 4  # counted
    assert EstimatedCountPaginator(Customer.objects.order_by("id"), 50).count == exact + 3  # small: counted


def test_admin_pages_work_while_another_merchants_scope_is_active(client, superuser, tenants):
    """Staff work across merchants: the admin is unscoped however the caller was scoped."""
    client = _client(client, superuser)

    with scope(merchant=tenants[0][Merchant].pk):
        listing = client.get(_url(Customer, "changelist"))
        detail = client.get(_url(Customer, "change", tenants[1][Customer].pk))

    assert listing.status_code == 200 and detail.status_code == 200
    assert all(rows[Customer].pk in listing.content.decode() for rows in tenants)
    assert AuditLog.objects.filter(action="customer_pii_viewed", target_id=tenants[1][Customer].pk).count() == 1
