"""seed_demo: deterministic demo data whose cached balances, tiers and aggregates match the rows."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from ulid import ULID

from apps.core.models import Customer, Merchant, Order, PointsTransaction, StaffMember, VipTier

DEMO = "demo-loyalnest.myshopify.com"
pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    arguments = {"customers": 200, "orders_per_customer": 4, "seed": 7, "merchants": 3} | options
    call_command("seed_demo", stdout=out, **arguments)
    return out.getvalue()


def scalar(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def totals() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders),"
            " (SELECT sum(total_price) FROM orders), (SELECT count(*) FROM points_transactions),"
            " (SELECT sum(points) FROM points_transactions), (SELECT sum(lifetime_points) FROM users),"
            " (SELECT string_agg(locale || ':' || n, ',' ORDER BY locale) FROM"
            "   (SELECT locale, count(*) n FROM users GROUP BY locale) l),"
            " (SELECT string_agg(lifecycle_stage || ':' || n, ',' ORDER BY lifecycle_stage) FROM"
            "   (SELECT lifecycle_stage, count(*) n FROM users GROUP BY lifecycle_stage) s)"
        )
        return cursor.fetchone()


def test_same_seed_gives_the_same_data_and_another_seed_does_not():
    with transaction.atomic():
        seed()
        first = totals()
        transaction.set_rollback(True)
    with transaction.atomic():
        seed()
        second = totals()
        transaction.set_rollback(True)
    seed(seed=8)
    third = totals()

    assert first == second
    assert first[0] == 200 and first[1] > 0
    assert third != first


def test_counts_stores_tiers_and_staff():
    output = seed()

    demo = Merchant.objects.get(shop_domain=DEMO)
    assert demo.name == "LoyalNest Demo Store" and demo.industry == "pet_store"
    assert Merchant.objects.count() == 3
    assert len(set(Merchant.objects.values_list("industry", flat=True))) == 3
    assert Customer.objects.count() == 200
    # M is the average number of orders per customer.
    assert 200 * 4 * 0.75 <= Order.objects.count() <= 200 * 4 * 1.25
    assert len(set(Customer.objects.values_list("locale", flat=True))) >= 8
    for merchant in Merchant.objects.all():
        tiers = VipTier.objects.filter(merchant=merchant)
        assert 3 <= tiers.count() <= 4
        assert all(tier.name.get("en") and len(tier.name) >= 3 for tier in tiers)
        assert merchant.program_settings is not None
    owner = StaffMember.objects.get(merchant=demo, shopify_user_id="demo-owner")
    assert owner.role == "owner"
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("loyalnest-demo")
    assert "admin" in output and "loyalnest-demo" in output


def test_ids_are_prefixed_ulids_and_idempotency_keys_unique():
    seed()

    for model, prefix in ((Customer, "cus_"), (Order, "ord_"), (PointsTransaction, "ptx_")):
        ids = list(model.objects.values_list("id", flat=True)[:50])
        assert all(value.startswith(prefix) and ULID.from_str(value[len(prefix) :]) for value in ids)
    assert (
        scalar(
            "SELECT count(*) FROM (SELECT merchant_id, idempotency_key FROM points_transactions"
            " GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        == 0
    )


def test_ledger_invariant_holds_for_every_customer():
    seed(customers=300, orders_per_customer=6)

    # Cached balance = sum of the customer's entries.
    assert (
        scalar(
            "SELECT count(*) FROM users u LEFT JOIN (SELECT customer_id, sum(points) s FROM points_transactions"
            " GROUP BY 1) t ON t.customer_id = u.id WHERE u.points_balance <> coalesce(t.s, 0)"
        )
        == 0
    )
    # balance_after is the running sum in ledger order and never negative.
    assert (
        scalar(
            "SELECT count(*) FROM (SELECT balance_after, sum(points) OVER (PARTITION BY customer_id"
            " ORDER BY created_at, id) running FROM points_transactions) x"
            " WHERE balance_after <> running OR balance_after < 0"
        )
        == 0
    )
    # Lifetime points = earned minus reversed earnings; the tier is the highest one reached.
    assert (
        scalar(
            "SELECT count(*) FROM users u LEFT JOIN (SELECT customer_id, sum(points) s FROM points_transactions"
            " WHERE kind IN ('earn', 'reverse') GROUP BY 1) t ON t.customer_id = u.id"
            " WHERE u.lifetime_points <> coalesce(t.s, 0)"
            " OR u.vip_tier_id IS DISTINCT FROM (SELECT v.id FROM vip_tiers v WHERE v.merchant_id = u.merchant_id"
            "   AND v.min_lifetime_points <= u.lifetime_points ORDER BY v.min_lifetime_points DESC LIMIT 1)"
        )
        == 0
    )
    # Order aggregates match the orders.
    assert (
        scalar(
            "SELECT count(*) FROM users u LEFT JOIN (SELECT customer_id, count(*) c,"
            " sum(total_price - refunded_amount) s, max(processed_at) l FROM orders GROUP BY 1) o"
            " ON o.customer_id = u.id WHERE u.orders_count <> coalesce(o.c, 0)"
            " OR u.total_spent <> coalesce(o.s, 0) OR u.last_order_at IS DISTINCT FROM o.l"
        )
        == 0
    )
    # Every order worth points earned exactly once, under the order's key.
    assert (
        scalar(
            "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM points_transactions t"
            " WHERE t.order_id = o.id AND t.kind = 'earn' AND t.idempotency_key = 'order:' || o.shopify_order_id)"
            " AND o.total_price >= 1"
        )
        == 0
    )
    assert PointsTransaction.objects.filter(kind="redeem").exists()
    assert Customer.objects.filter(lifecycle_stage="churned").exists()
    assert Customer.objects.filter(orders_count=1).exists()


def test_if_empty_is_a_no_op_once_the_demo_store_exists():
    seed()
    before = totals()

    output = seed(if_empty=True, customers=500)

    assert "nothing to do" in output
    assert totals() == before
    with pytest.raises(CommandError):
        seed()
    assert totals() == before
