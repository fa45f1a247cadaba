"""C4: after any sequence of earn, redeem, adjust, reverse, duplicate delivery and retry,
every cached balance equals the sum of its ledger entries and is never negative."""

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.core.errors import ApplicationError
from apps.core.models import Customer, PointsTransaction
from apps.core.services import points_adjust, points_earn, points_redeem, points_reverse
from tests.factories import CustomerFactory, MerchantFactory, VipTierFactory


class LedgerMachine(RuleBasedStateMachine):
    """Drives the real services against PostgreSQL; the model is only the key bookkeeping."""

    @initialize()
    def setup(self):
        self.merchant = MerchantFactory()
        VipTierFactory(merchant=self.merchant, name={"en": "Silver"}, min_lifetime_points=300)
        self.customers = CustomerFactory.create_batch(2, merchant=self.merchant)
        self.counter = 0
        self.applied = []  # (key, kwargs) of operations that took effect, for replays
        self.earns = []

    def _key(self):
        self.counter += 1
        return f"k{self.counter}"

    def _apply(self, service, **kwargs):
        try:
            result = service(merchant=self.merchant, **kwargs)
        except ApplicationError:
            return None
        self.applied.append((service, kwargs))
        return result

    @rule(who=st.integers(0, 1), points=st.integers(1, 400))
    def earn(self, who, points):
        result = self._apply(points_earn, customer=self.customers[who], points=points, idempotency_key=self._key())
        if result:
            self.earns.append(result.transaction)

    @rule(who=st.integers(0, 1), points=st.integers(1, 400))
    def redeem(self, who, points):
        self._apply(points_redeem, customer=self.customers[who], points=points, idempotency_key=self._key())

    @rule(who=st.integers(0, 1), points=st.integers(-300, 300).filter(bool))
    def adjust(self, who, points):
        self._apply(
            points_adjust, customer=self.customers[who], points=points, reason="test", idempotency_key=self._key()
        )

    @precondition(lambda self: self.earns)
    @rule(index=st.integers(0, 50), partial=st.one_of(st.none(), st.integers(1, 200)))
    def reverse(self, index, partial):
        original = self.earns[index % len(self.earns)]
        self._apply(points_reverse, original=original, points=partial, idempotency_key=self._key())

    @precondition(lambda self: self.applied)
    @rule(index=st.integers(0, 50))
    def duplicate_delivery_or_task_retry(self, index):
        service, kwargs = self.applied[index % len(self.applied)]
        before = PointsTransaction.objects.filter(merchant=self.merchant).count()
        result = service(merchant=self.merchant, **kwargs)
        assert not result.created
        assert PointsTransaction.objects.filter(merchant=self.merchant).count() == before

    @invariant()
    def cached_balance_equals_the_ledger(self):
        if not hasattr(self, "merchant"):
            return
        for customer in Customer.objects.filter(merchant=self.merchant):
            total = PointsTransaction.objects.filter(customer=customer).aggregate(s=Sum("points"))["s"] or 0
            assert customer.points_balance == total >= 0
            assert customer.lifetime_points >= 0


@pytest.mark.django_db
def test_ledger_invariant_holds_for_any_sequence():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
