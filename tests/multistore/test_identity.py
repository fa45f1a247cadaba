"""Shared identity: verified-email matching, the review list, unlink, leaving the group."""

import pytest

from apps.core.models import Customer
from apps.core.services import ledger_balance, points_earn, points_redeem
from apps.multistore.models import LinkReview, SharedAccount, StoreGroupMember
from apps.multistore.selectors import shared_leaderboard_get
from apps.multistore.services import (
    group_leave,
    group_sharing_update,
    link_review_resolve,
    shared_customer_unlink,
    shared_customers_link,
)
from tests.factories import CustomerFactory
from tests.shopify_helpers import session_token


def _customer(store, email, first="Ana", last="Silva", **extra):
    return CustomerFactory(merchant=store, email=email, first_name=first, last_name=last, points_balance=0, **extra)


def _fresh(customer):
    return Customer.objects.get(pk=customer.pk)


def test_only_verified_matching_emails_are_linked(group, stores):
    (us, _), (eu, _), (jp, _) = stores
    a = _customer(us, "ana@example.com")
    b = _customer(eu, " ANA@example.com")
    unverified = _customer(jp, "ana@example.com", email_marketing_consent="invalid")
    lone = _customer(us, "solo@example.com")
    report = shared_customers_link(group=group)
    assert report.linked == 2 and report.accounts_created == 1
    assert _fresh(a).shared_customer_id == _fresh(b).shared_customer_id is not None
    assert _fresh(unverified).shared_customer_id is None and _fresh(lone).shared_customer_id is None
    # Linking again changes nothing.
    assert shared_customers_link(group=group).linked == 0


def test_ambiguous_matches_wait_for_review_then_merge_or_stay_apart(group, stores):
    (us, us_owner), (eu, _), _ = stores
    first = _customer(us, "kim@example.com", first="Kim", last="Lee")
    second = _customer(eu, "kim@example.com", first="Kimberly", last="Park")
    dup_a, dup_b = _customer(us, "Joe@example.com", first="Joe"), _customer(us, "joe@example.com", first="Joe")
    dup_c = _customer(eu, "joe@example.com", first="Joe")
    points_earn(merchant=us, customer=first, points=30, idempotency_key="o1")
    points_earn(merchant=eu, customer=second, points=20, idempotency_key="o1")

    report = shared_customers_link(group=group)

    assert report.linked == 0 and report.reviews == 2
    reviews = {r.reason: r for r in LinkReview.objects.filter(group=group)}
    assert set(reviews) == {"name_mismatch", "duplicate_in_store"}
    assert all(_fresh(c).shared_customer_id is None for c in (first, second, dup_a, dup_b, dup_c))

    link_review_resolve(merchant=us, actor=us_owner, review_id=reviews["name_mismatch"].pk, decision="merged")
    assert _fresh(first).shared_customer_id == _fresh(second).shared_customer_id
    assert _fresh(first).points_balance == _fresh(second).points_balance == 50

    link_review_resolve(merchant=us, actor=us_owner, review_id=reviews["duplicate_in_store"].pk, decision="kept_apart")
    shared_customers_link(group=group)
    assert LinkReview.objects.filter(group=group, status="pending").count() == 0
    assert all(_fresh(c).shared_customer_id is None for c in (dup_a, dup_b, dup_c))


def test_a_review_of_another_group_is_not_found(group, stores):
    from apps.core.errors import NotFound

    from .conftest import join, plus_store

    other, other_owner = plus_store("zeta-a.myshopify.com", owner_email="z@z.example", user_id="98001")
    other_b, other_b_owner = plus_store("zeta-b.myshopify.com", owner_email="z@z.example", user_id="98002")
    join(other, other_owner, other_b, other_b_owner)
    _customer(other, "q@example.com", first="Q", last="One")
    _customer(other_b, "q@example.com", first="Q", last="Two")
    other_group = StoreGroupMember.objects.get(merchant=other).group
    shared_customers_link(group=other_group)
    review = LinkReview.objects.get(group=other_group)
    (us, us_owner), *_ = stores
    with pytest.raises(NotFound):
        link_review_resolve(merchant=us, actor=us_owner, review_id=review.pk, decision="merged")
    assert LinkReview.objects.get(pk=review.pk).status == "pending"


def test_unlink_right_after_linking_restores_every_store_exactly(group, stores):
    (_us, _), (eu, _), (_jp, _) = stores
    customers = [_customer(store, "lee@example.com") for store, _o in stores]
    for customer, points in zip(customers, (100, 40, 0), strict=True):
        if points:
            points_earn(merchant=customer.merchant, customer=customer, points=points, idempotency_key="own")
    shared_customers_link(group=group)
    assert {_fresh(c).points_balance for c in customers} == {140}

    shared_customer_unlink(merchant=eu, customer_id=customers[1].pk)

    us_c, eu_c, jp_c = (_fresh(c) for c in customers)
    assert (us_c.points_balance, eu_c.points_balance, jp_c.points_balance) == (100, 40, 100)
    assert eu_c.shared_customer_id is None and us_c.shared_customer_id == jp_c.shared_customer_id
    assert SharedAccount.objects.get(pk=us_c.shared_customer_id).points_balance == 100
    for c in (us_c, eu_c, jp_c):
        assert c.points_balance == ledger_balance(merchant=c.merchant, customer=c)
    # The unlinked customer no longer moves the others.
    points_earn(merchant=eu, customer=eu_c, points=5, idempotency_key="later")
    assert _fresh(us_c).points_balance == 100


def test_unlink_after_spending_never_creates_points(group, stores):
    customers = [_customer(store, "max@example.com") for store, _o in stores]
    points_earn(merchant=customers[0].merchant, customer=customers[0], points=100, idempotency_key="own")
    shared_customers_link(group=group)
    points_redeem(merchant=customers[1].merchant, customer=customers[1], points=90, idempotency_key="spend")
    shared_customer_unlink(merchant=customers[1].merchant, customer_id=customers[1].pk)
    balances = [_fresh(c).points_balance for c in customers]
    assert balances == [10, 0, 10]


def test_leaving_the_group_unlinks_the_stores_customers(group, stores):
    (_us, _), (eu, eu_owner), _ = stores
    customers = [_customer(store, "sam@example.com") for store, _o in stores]
    points_earn(merchant=eu, customer=customers[1], points=60, idempotency_key="own")
    shared_customers_link(group=group)
    group_leave(merchant=eu, actor=eu_owner)
    assert not StoreGroupMember.objects.filter(merchant=eu).exists()
    assert _fresh(customers[1]).shared_customer_id is None
    assert [_fresh(c).points_balance for c in customers] == [0, 60, 0]
    assert eu.program_settings.__class__.objects.get(merchant=eu).multi_store_config == {}


def test_the_shared_leaderboard_ranks_points_earned_anywhere_and_rebuilds_from_the_database(
    group, stores, django_capture_on_commit_callbacks
):
    from apps.core.redis import get_redis

    (us, us_owner), (eu, _), _ = stores
    group_sharing_update(merchant=us, actor=us_owner, leaderboard=True)
    ana = [_customer(store, "ana@example.com") for store, _o in stores]
    bo = [_customer(store, "bo@example.com", first="Bo", last="Ek") for store, _o in stores]
    shared_customers_link(group=group)
    points_earn(merchant=us, customer=ana[0], points=50, idempotency_key="a1")
    points_earn(merchant=eu, customer=bo[1], points=70, idempotency_key="b1")
    points_earn(merchant=eu, customer=ana[1], points=30, idempotency_key="a2")

    board = shared_leaderboard_get(group=group)
    assert [(row["shared_customer_id"], row["score"]) for row in board] == [
        (_fresh(ana[0]).shared_customer_id, 80),
        (_fresh(bo[0]).shared_customer_id, 70),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        points_earn(merchant=us, customer=bo[0], points=20, idempotency_key="b2")
    assert shared_leaderboard_get(group=group)[0] == {
        "shared_customer_id": _fresh(bo[0]).shared_customer_id,
        "score": 90,
    }
    get_redis().flushdb()
    assert shared_leaderboard_get(group=group)[0]["score"] == 90


def test_the_page_shows_members_and_reviews(client, group, stores):
    (us, us_owner), (eu, _), _ = stores
    _customer(us, "kim@example.com", first="Kim", last="Lee")
    _customer(eu, "kim@example.com", first="Kimberly", last="Park")
    shared_customers_link(group=group)
    token = session_token(us.shop_domain, user_id=us_owner.shopify_user_id)
    response = client.get(f"/app/multi-store/?shop={us.shop_domain}&id_token={token}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "brand-eu.myshopify.com" in html and "Kimberly Park" in html
