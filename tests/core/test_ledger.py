"""The points ledger (RELIABILITY C1–C5)."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from apps.core.errors import Conflict, InsufficientPoints, NotFound, ValidationFailed
from apps.core.models import AuditLog, Customer, PointsTransaction
from apps.core.redis import get_redis
from apps.core.services import (
    Earn,
    ledger_balance,
    points_adjust,
    points_earn,
    points_earn_many,
    points_redeem,
    points_reverse,
)
from apps.core.services.ledger import IdempotencyKeyReused
from apps.core.tenancy import scopes_disabled
from tests.factories import CustomerFactory, MerchantFactory, RewardFactory, VipTierFactory


def _refresh(customer) -> Customer:
    return Customer.objects.get(pk=customer.pk)


def test_earn_appends_an_entry_moves_the_balance_and_audits(merchant, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = points_earn(merchant=merchant, customer=customer, points=120, idempotency_key="order:1")

    assert result.created and result.balance == 120
    customer = _refresh(customer)
    assert customer.points_balance == 120 and customer.lifetime_points == 120
    entry = PointsTransaction.objects.get(customer=customer)
    assert (entry.kind, entry.points, entry.balance_after) == ("earn", 120, 120)
    assert AuditLog.objects.filter(merchant=merchant, action="points_earn", target_id=entry.pk).count() == 1
    latest = get_redis().xrevrange(f"{merchant.pk}:points:{customer.pk}", count=1)
    assert json.loads(latest[0][1]["data"])["points_balance"] == 120


def test_stream_is_not_written_when_the_transaction_rolls_back(merchant, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        points_earn(merchant=merchant, customer=customer, points=50, idempotency_key="order:rolled-back")
        raise RuntimeError("the caller failed after the earn")

    assert PointsTransaction.objects.filter(customer=customer).count() == 0
    assert get_redis().xlen(f"{merchant.pk}:points:{customer.pk}") == 0


def test_the_same_idempotency_key_credits_once(merchant, customer):
    first = points_earn(merchant=merchant, customer=customer, points=40, idempotency_key="order:7")
    again = [points_earn(merchant=merchant, customer=customer, points=40, idempotency_key="order:7") for _ in range(4)]

    assert first.created and not any(r.created for r in again)
    assert {r.transaction.pk for r in again} == {first.transaction.pk}
    assert _refresh(customer).points_balance == 40
    assert PointsTransaction.objects.filter(customer=customer).count() == 1


def test_a_reused_key_with_another_meaning_is_refused(merchant, customer):
    points_earn(merchant=merchant, customer=customer, points=40, idempotency_key="k1")

    with pytest.raises(IdempotencyKeyReused):
        points_earn(merchant=merchant, customer=customer, points=41, idempotency_key="k1")
    with pytest.raises(IdempotencyKeyReused):
        points_redeem(merchant=merchant, customer=customer, points=10, idempotency_key="k1")
    assert _refresh(customer).points_balance == 40


def test_idempotency_keys_are_per_merchant(merchant, customer, other_merchant):
    other_customer = other_merchant["customers"][0]
    points_earn(merchant=merchant, customer=customer, points=10, idempotency_key="order:1")
    result = points_earn(
        merchant=other_merchant["merchant"], customer=other_customer, points=10, idempotency_key="order:1"
    )

    assert result.created
    assert _refresh(other_customer).points_balance == 10


def test_redeeming_more_than_the_balance_writes_nothing(merchant, customer):
    points_earn(merchant=merchant, customer=customer, points=100, idempotency_key="e1")

    with pytest.raises(InsufficientPoints):
        points_redeem(merchant=merchant, customer=customer, points=101, idempotency_key="r1")

    assert _refresh(customer).points_balance == 100
    assert not PointsTransaction.objects.filter(idempotency_key="r1").exists()
    assert not AuditLog.objects.filter(action="points_redeem").exists()


def test_redeeming_a_reward_costs_its_points(merchant, customer):
    reward = RewardFactory(merchant=merchant, points_cost=300)
    points_earn(merchant=merchant, customer=customer, points=500, idempotency_key="e1")

    result = points_redeem(merchant=merchant, customer=customer, points=0, reward=reward, idempotency_key="r1")

    assert result.transaction.points == -300 and result.transaction.reward_id == reward.pk
    assert _refresh(customer).points_balance == 200
    assert _refresh(customer).lifetime_points == 500  # spending does not lower the tier progress


def test_a_reward_of_another_merchant_cannot_be_redeemed(merchant, customer, other_merchant):
    foreign_reward = RewardFactory(merchant=other_merchant["merchant"], points_cost=10)
    points_earn(merchant=merchant, customer=customer, points=500, idempotency_key="e1")

    with pytest.raises(Exception, match="not_found"):
        points_redeem(merchant=merchant, customer=customer, points=0, reward=foreign_reward, idempotency_key="r1")
    assert _refresh(customer).points_balance == 500


@pytest.mark.parametrize("points", [0, -5, 10_000_001, True, "10"])
def test_nonsense_amounts_are_refused(merchant, customer, points):
    with pytest.raises(ValidationFailed):
        points_earn(merchant=merchant, customer=customer, points=points, idempotency_key="bad")
    assert PointsTransaction.objects.count() == 0


def test_adjust_needs_a_reason_and_never_goes_below_zero(merchant, customer, owner):
    points_adjust(merchant=merchant, customer=customer, points=30, reason="Goodwill", idempotency_key="a1", actor=owner)

    with pytest.raises(ValidationFailed):
        points_adjust(merchant=merchant, customer=customer, points=5, reason=" ", idempotency_key="a2", actor=owner)
    with pytest.raises(InsufficientPoints):
        points_adjust(merchant=merchant, customer=customer, points=-31, reason="Fix", idempotency_key="a3", actor=owner)

    points_adjust(merchant=merchant, customer=customer, points=-30, reason="Fix", idempotency_key="a4", actor=owner)
    assert _refresh(customer).points_balance == 0
    audit = AuditLog.objects.filter(action="points_adjust").order_by("created_at")
    assert [a.actor_id for a in audit] == [owner.pk, owner.pk]


def test_a_refund_reverses_exactly_once(merchant, customer):
    earn = points_earn(merchant=merchant, customer=customer, points=200, idempotency_key="order:1").transaction

    first = points_reverse(merchant=merchant, original=earn, idempotency_key="refund:1")
    replay = points_reverse(merchant=merchant, original=earn, idempotency_key="refund:1")
    with pytest.raises(Conflict):
        points_reverse(merchant=merchant, original=earn, idempotency_key="cancel:1")

    assert first.created and not replay.created
    assert first.transaction.points == -200 and first.transaction.reverses_id == earn.pk
    customer = _refresh(customer)
    assert customer.points_balance == 0 and customer.lifetime_points == 0


def test_partial_refunds_never_reverse_more_than_the_original(merchant, customer):
    earn = points_earn(merchant=merchant, customer=customer, points=100, idempotency_key="order:1").transaction

    points_reverse(merchant=merchant, original=earn, points=30, idempotency_key="refund:a")
    points_reverse(merchant=merchant, original=earn, points=50, idempotency_key="refund:b")
    with pytest.raises(Conflict):
        points_reverse(merchant=merchant, original=earn, points=21, idempotency_key="refund:c")
    points_reverse(merchant=merchant, original=earn, points=20, idempotency_key="refund:d")

    assert _refresh(customer).points_balance == 0
    with pytest.raises(Conflict):
        points_reverse(merchant=merchant, original=earn, idempotency_key="refund:e")


def test_reversing_spent_points_takes_what_is_left_and_records_the_shortfall(merchant, customer):
    earn = points_earn(merchant=merchant, customer=customer, points=100, idempotency_key="order:1").transaction
    points_redeem(merchant=merchant, customer=customer, points=80, idempotency_key="r1")

    reversal = points_reverse(merchant=merchant, original=earn, idempotency_key="refund:1").transaction

    assert reversal.points == -20 and reversal.metadata == {"shortfall": 80}
    assert _refresh(customer).points_balance == 0
    with pytest.raises(Conflict):  # it still counts as reversed: never twice
        points_reverse(merchant=merchant, original=earn, idempotency_key="refund:2")


def test_a_reversal_cannot_be_reversed(merchant, customer):
    earn = points_earn(merchant=merchant, customer=customer, points=100, idempotency_key="order:1").transaction
    reversal = points_reverse(merchant=merchant, original=earn, idempotency_key="refund:1").transaction

    with pytest.raises(ValidationFailed):
        points_reverse(merchant=merchant, original=reversal, idempotency_key="refund:2")


def test_vip_tier_follows_lifetime_points(merchant, customer):
    silver = VipTierFactory(merchant=merchant, name={"en": "Silver"}, min_lifetime_points=100)
    gold = VipTierFactory(merchant=merchant, name={"en": "Gold"}, min_lifetime_points=500)

    earn = points_earn(merchant=merchant, customer=customer, points=150, idempotency_key="e1").transaction
    assert _refresh(customer).vip_tier_id == silver.pk
    points_earn(merchant=merchant, customer=customer, points=400, idempotency_key="e2")
    assert _refresh(customer).vip_tier_id == gold.pk
    points_reverse(merchant=merchant, original=earn, idempotency_key="refund:e1")
    assert _refresh(customer).vip_tier_id == silver.pk
    assert AuditLog.objects.filter(action="vip_tier_changed", target_id=customer.pk).count() == 3


def test_ledger_entries_cannot_be_changed_or_deleted(merchant, customer):
    entry = points_earn(merchant=merchant, customer=customer, points=10, idempotency_key="e1").transaction

    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        PointsTransaction.objects.filter(pk=entry.pk).update(points=999)
    with pytest.raises(TypeError):
        PointsTransaction.objects.filter(pk=entry.pk).delete()
    # Even raw SQL is refused by the database trigger.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE points_transactions SET points = 999 WHERE id = %s", [entry.pk])
    assert PointsTransaction.objects.get(pk=entry.pk).points == 10


def test_the_database_refuses_a_negative_balance(merchant, customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.filter(pk=customer.pk).update(points_balance=-1)


def _in_thread(fn):
    """Run `fn` on its own database connection, as a second web worker would."""

    def run(*args):
        try:
            with scopes_disabled():
                return fn(*args)
        finally:
            connection.close()

    return run


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_redemptions_never_overdraw():
    merchant = MerchantFactory()
    customer = CustomerFactory(merchant=merchant)
    points_earn(merchant=merchant, customer=customer, points=1000, idempotency_key="seed")

    @_in_thread
    def redeem(index):
        try:
            points_redeem(merchant=merchant, customer=customer, points=100, idempotency_key=f"r{index}")
            return "ok"
        except InsufficientPoints:
            return "refused"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(redeem, range(50)))

    assert outcomes.count("ok") == 10 and outcomes.count("refused") == 40
    assert _refresh(customer).points_balance == 0
    assert ledger_balance(merchant=merchant, customer=customer) == 0


@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_five_times_concurrently_credits_once():
    merchant = MerchantFactory()
    customer = CustomerFactory(merchant=merchant)

    @_in_thread
    def deliver(_):
        return points_earn(merchant=merchant, customer=customer, points=75, idempotency_key="order:42").created

    with ThreadPoolExecutor(max_workers=5) as pool:
        created = list(pool.map(deliver, range(5)))

    assert created.count(True) == 1
    assert _refresh(customer).points_balance == 75
    assert PointsTransaction.objects.filter(customer=customer).aggregate(s=Sum("points"))["s"] == 75


# --- points_earn_many: the batch form used by webhook bursts -----------------------------------
def test_earn_many_writes_the_same_rows_as_one_earn_at_a_time(
    merchant, other_merchant, django_capture_on_commit_callbacks
):
    gold = VipTierFactory(merchant=merchant, name={"en": "Gold"}, min_lifetime_points=150)
    ada, bob = CustomerFactory(merchant=merchant), CustomerFactory(merchant=merchant)
    foreign_before = list(PointsTransaction.objects.filter(merchant=other_merchant["merchant"]).values_list("pk"))
    earns = [
        Earn(customer_id=ada.pk, points=100, idempotency_key="order:1:earn", reason="Order #1"),
        Earn(customer_id=bob.pk, points=30, idempotency_key="order:2:earn"),
        Earn(customer_id=ada.pk, points=80, idempotency_key="order:3:earn", metadata={"amount": "80.00"}),
        Earn(customer_id=ada.pk, points=100, idempotency_key="order:1:earn", reason="Order #1"),  # twice: once
    ]

    with django_capture_on_commit_callbacks(execute=True):
        entries = points_earn_many(merchant=merchant, earns=earns)

    assert [(e.customer_id, e.points, e.balance_after) for e in entries] == [
        (ada.pk, 100, 100),
        (bob.pk, 30, 30),
        (ada.pk, 80, 180),
    ]
    ada, bob = _refresh(ada), _refresh(bob)
    assert (ada.points_balance, ada.lifetime_points, ada.vip_tier_id) == (180, 180, gold.pk)
    assert (bob.points_balance, bob.vip_tier_id) == (30, None)
    for someone in (ada, bob):
        assert ledger_balance(merchant=merchant, customer=someone) == someone.points_balance
    assert AuditLog.objects.filter(merchant=merchant, action="points_earn").count() == 3
    tier_change = AuditLog.objects.get(merchant=merchant, action="vip_tier_changed", target_id=ada.pk)
    assert tier_change.metadata == {"from": None, "to": gold.pk}
    latest = get_redis().xrevrange(f"{merchant.pk}:points:{ada.pk}", count=1)
    assert json.loads(latest[0][1]["data"])["points_balance"] == 180
    assert get_redis().xlen(f"{merchant.pk}:tiers:{ada.pk}") == 1

    # Applied keys are skipped: the same batch again writes nothing.
    assert points_earn_many(merchant=merchant, earns=earns) == []
    assert PointsTransaction.objects.filter(merchant=merchant).count() == 3
    assert list(PointsTransaction.objects.filter(merchant=other_merchant["merchant"]).values_list("pk")) == (
        foreign_before
    )


def test_earn_many_refuses_a_reused_key_or_a_foreign_customer_and_writes_nothing(merchant, other_merchant):
    ada = CustomerFactory(merchant=merchant)
    points_earn(merchant=merchant, customer=ada, points=10, idempotency_key="order:1:earn")
    foreign = other_merchant["customers"][0]
    foreign_balance = foreign.points_balance

    with pytest.raises(IdempotencyKeyReused):
        points_earn_many(
            merchant=merchant,
            earns=[
                Earn(customer_id=ada.pk, points=5, idempotency_key="order:2:earn"),
                Earn(customer_id=ada.pk, points=99, idempotency_key="order:1:earn"),  # another meaning
            ],
        )
    with pytest.raises(NotFound):
        points_earn_many(merchant=merchant, earns=[Earn(customer_id=foreign.pk, points=5, idempotency_key="x")])
    with pytest.raises(ValidationFailed):
        points_earn_many(merchant=merchant, earns=[Earn(customer_id=ada.pk, points=0, idempotency_key="zero")])

    assert list(PointsTransaction.objects.filter(merchant=merchant).values_list("points", flat=True)) == [10]
    assert _refresh(ada).points_balance == 10
    assert _refresh(foreign).points_balance == foreign_balance
