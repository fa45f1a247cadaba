"""One ledger per shared customer (RELIABILITY C6): cross-store redemption, concurrency,
per-store append-only ledgers whose balance is the sum of their entries."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import Sum

from apps.core.errors import InsufficientPoints
from apps.core.models import Customer, PointsTransaction
from apps.core.services import Earn, ledger_balance, points_earn, points_earn_many, points_redeem, points_reverse
from apps.core.tenancy import scopes_disabled
from apps.multistore.models import SharedAccount, SharedLedgerEntry
from apps.multistore.services import shared_customers_link
from tests.factories import CustomerFactory, MerchantFactory

from .conftest import join, plus_store


def _linked(group, stores, email="ana@example.com", balances=None):
    customers = [
        CustomerFactory(
            merchant=store, email=email, first_name="Ana", last_name="Silva", points_balance=0, lifetime_points=0
        )
        for store, _o in stores
    ]
    for customer, balance in zip(customers, balances or [0] * len(customers), strict=True):
        if balance:
            points_earn(
                merchant=customer.merchant, customer=customer, points=balance, idempotency_key=f"open-{customer.pk}"
            )
    shared_customers_link(group=group)
    return [Customer.objects.get(pk=c.pk) for c in customers]


def _assert_invariants(customers):
    account = SharedAccount.objects.get(pk=customers[0].shared_customer_id)
    shared_sum = SharedLedgerEntry.objects.filter(account=account).aggregate(s=Sum("points"))["s"] or 0
    assert account.points_balance == shared_sum
    for customer in customers:
        fresh = Customer.objects.get(pk=customer.pk)
        # Each store's ledger: cached balance = sum of its own entries, and = the shared balance.
        assert fresh.points_balance == ledger_balance(merchant=fresh.merchant, customer=fresh)
        assert fresh.points_balance == account.points_balance
    return account


def test_linking_merges_the_stores_histories_into_one_balance(group, stores):
    us, eu, jp = _linked(group, stores, balances=(100, 50, 0))
    assert us.shared_customer_id == eu.shared_customer_id == jp.shared_customer_id
    account = _assert_invariants([us, eu, jp])
    assert account.points_balance == 150
    assert list(
        SharedLedgerEntry.objects.filter(account=account).order_by("id").values_list("source_merchant_id", "points")
    ) == [(us.merchant_id, 100), (eu.merchant_id, 50), (jp.merchant_id, 0)]


def test_points_earned_in_one_store_are_redeemed_in_another(group, stores):
    us, eu, jp = _linked(group, stores)
    earned = points_earn(merchant=us.merchant, customer=us, points=300, idempotency_key="order:1").transaction
    assert Customer.objects.get(pk=eu.pk).points_balance == 300

    redeemed = points_redeem(merchant=eu.merchant, customer=eu, points=250, idempotency_key="reward:1").transaction

    account = _assert_invariants([us, eu, jp])
    assert account.points_balance == 50
    # Each shared entry records the store it came from; mirrors name their source entry.
    shared = list(SharedLedgerEntry.objects.filter(account=account, kind="store").order_by("id"))
    assert [(e.source_merchant_id, e.source_transaction_id, e.points) for e in shared] == [
        (us.merchant_id, earned.pk, 300),
        (eu.merchant_id, redeemed.pk, -250),
    ]
    mirror = PointsTransaction.objects.get(merchant=us.merchant, idempotency_key=f"multistore:{redeemed.pk}")
    assert (mirror.points, mirror.metadata["source_store"]) == (-250, eu.merchant_id)
    with pytest.raises(InsufficientPoints):
        points_redeem(merchant=jp.merchant, customer=jp, points=51, idempotency_key="reward:2")
    _assert_invariants([us, eu, jp])


def test_a_retried_earn_moves_the_shared_balance_once(group, stores):
    us, eu, jp = _linked(group, stores)
    for _attempt in range(3):
        points_earn(merchant=us.merchant, customer=us, points=40, idempotency_key="order:9")
    assert _assert_invariants([us, eu, jp]).points_balance == 40


def test_batches_and_refunds_follow_the_shared_balance(group, stores):
    us, eu, jp = _linked(group, stores)
    other = CustomerFactory(merchant=us.merchant, email="", points_balance=0)
    entries = points_earn_many(
        merchant=us.merchant,
        earns=[
            Earn(customer_id=us.pk, points=70, idempotency_key="b:1"),
            Earn(customer_id=other.pk, points=5, idempotency_key="b:2"),
            Earn(customer_id=us.pk, points=30, idempotency_key="b:3"),
        ],
    )
    assert _assert_invariants([us, eu, jp]).points_balance == 100
    points_redeem(merchant=jp.merchant, customer=jp, points=80, idempotency_key="jp:r")
    # The refund in the US store takes back what is left of the shared balance, never below 0.
    points_reverse(merchant=us.merchant, original=entries[0], idempotency_key="refund:1")
    assert _assert_invariants([us, eu, jp]).points_balance == 0
    assert Customer.objects.get(pk=other.pk).points_balance == 5


def test_shared_tiers_follow_group_wide_lifetime_points(group, stores):
    from tests.factories import VipTierFactory

    gold = VipTierFactory(merchant=stores[2][0], name={"en": "Gold"}, min_lifetime_points=200)
    us, eu, jp = _linked(group, stores)
    points_earn(merchant=us.merchant, customer=us, points=150, idempotency_key="o1")
    points_earn(merchant=eu.merchant, customer=eu, points=60, idempotency_key="o2")
    assert Customer.objects.get(pk=jp.pk).vip_tier_id == gold.pk


def test_a_store_outside_the_group_is_untouched(group, stores):
    outsider, _owner = plus_store("other-brand.myshopify.com", owner_email="someone@else.example", user_id="92001")
    us, eu, jp = _linked(group, stores)
    stranger = CustomerFactory(merchant=outsider, email="ana@example.com", points_balance=0)
    shared_customers_link(group=group)
    points_earn(merchant=us.merchant, customer=us, points=10, idempotency_key="o1")
    points_earn(merchant=outsider, customer=stranger, points=7, idempotency_key="o1")
    stranger = Customer.objects.get(pk=stranger.pk)
    assert (stranger.shared_customer_id, stranger.points_balance) == (None, 7)
    assert _assert_invariants([us, eu, jp]).points_balance == 10
    assert not PointsTransaction.objects.filter(merchant=outsider, idempotency_key__startswith="multistore:").exists()


def test_merchants_outside_any_group_write_no_shared_rows(db):
    merchant = MerchantFactory()
    customer = CustomerFactory(merchant=merchant, shared_customer_id="SHARED_IMPORTED")
    points_earn(merchant=merchant, customer=customer, points=10, idempotency_key="o1")
    points_redeem(merchant=merchant, customer=customer, points=10, idempotency_key="r1")
    assert not SharedLedgerEntry.objects.exists()
    assert PointsTransaction.objects.filter(merchant=merchant).count() == 2


# --- concurrency: separate connections, as separate web workers ---------------------------------


def _in_thread(fn):
    def run(*args):
        try:
            with scopes_disabled():
                return fn(*args)
        finally:
            connection.close()

    return run


@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_in_different_stores_never_overdraw_the_shared_balance():
    stores = [plus_store(f"brand-{n}.myshopify.com", user_id=f"9300{n}") for n in range(3)]
    (primary, owner), *rest = stores
    for store, store_owner in rest:
        group = join(primary, owner, store, store_owner)
    customers = _linked(group, stores)
    points_earn(merchant=primary, customer=customers[0], points=1000, idempotency_key="seed")

    @_in_thread
    def redeem(index):
        customer = customers[index % 3]
        try:
            points_redeem(merchant=customer.merchant, customer=customer, points=100, idempotency_key=f"r{index}")
            return "ok"
        except InsufficientPoints:
            return "refused"

    with ThreadPoolExecutor(max_workers=9) as pool:
        outcomes = list(pool.map(redeem, range(30)))

    assert outcomes.count("ok") == 10 and outcomes.count("refused") == 20
    assert _assert_invariants(customers).points_balance == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_earns_and_redemptions_across_stores_keep_every_copy_equal():
    stores = [plus_store(f"mix-{n}.myshopify.com", user_id=f"9400{n}") for n in range(2)]
    (primary, owner), (second, second_owner) = stores
    group = join(primary, owner, second, second_owner)
    customers = _linked(group, stores)

    @_in_thread
    def work(index):
        customer = customers[index % 2]
        if index % 3 == 0:
            try:
                points_redeem(merchant=customer.merchant, customer=customer, points=15, idempotency_key=f"r{index}")
            except InsufficientPoints:
                return -0
            return -15
        points_earn(merchant=customer.merchant, customer=customer, points=10, idempotency_key=f"e{index}")
        return 10

    with ThreadPoolExecutor(max_workers=8) as pool:
        moved = sum(pool.map(work, range(40)))

    assert _assert_invariants(customers).points_balance == moved
