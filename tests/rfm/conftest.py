"""Shared fixtures of the RFM tests: shops with an order history to score and learn from."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from apps.core.models import Customer, Order
from tests.factories import StaffMemberFactory

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def build_history(merchant, *, customers: int, seed: int = 1, now: datetime = NOW, days: int = 540, prefix="h"):
    """Customers with orders over `days` before `now`: a mix of steady buyers, buyers who
    stopped at some point and one-off buyers; the customer rows' totals match their orders."""
    rng = np.random.default_rng(seed)
    customer_rows, order_rows = [], []
    for index in range(customers):
        kind = rng.choice(["steady", "stopped", "once"], p=[0.4, 0.4, 0.2])
        gap = float(rng.uniform(15, 60))
        start = now - timedelta(days=float(rng.uniform(200, days)))
        end = now if kind == "steady" else start + timedelta(days=float(rng.uniform(0, (now - start).days)))
        times = []
        moment = start
        while moment < end and len(times) < 40:
            times.append(moment)
            moment += timedelta(days=gap * float(rng.uniform(0.5, 1.5)))
            if kind == "once":
                break
        customer = Customer(
            merchant=merchant,
            shopify_customer_id=f"{prefix}{seed}{index:05d}",
            email=f"{prefix}{seed}-{index}@example.com",
        )
        prices = [Decimal(str(round(float(rng.uniform(20, 200)), 2))) for _ in times]
        customer.orders_count = len(times)
        customer.total_spent = sum(prices, Decimal("0"))
        customer.last_order_at = times[-1] if times else None
        customer_rows.append(customer)
        for number, (moment, price) in enumerate(zip(times, prices, strict=True)):
            order_rows.append(
                Order(
                    merchant=merchant,
                    customer=customer,
                    shopify_order_id=f"{prefix}{seed}{index:05d}{number:03d}",
                    total_price=price,
                    currency="USD",
                    processed_at=moment,
                )
            )
    Customer.objects.bulk_create(customer_rows)
    Order.objects.bulk_create(order_rows, batch_size=2000)
    # Signed up before their first order (the features count tenure from the signup).
    Customer.objects.filter(merchant=merchant).update(created_at=now - timedelta(days=days + 30))
    return customer_rows


@pytest.fixture(autouse=True)
def _industry_presets(request):
    """The presets migration 0003 loads; transactional tests flush them, so reload when missing."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))
    if not (transactional or marker or "db" in request.fixturenames):
        return
    from apps.rfm.models import RfmBenchmark
    from apps.rfm.presets import INDUSTRIES, preset_id, preset_thresholds

    request.getfixturevalue("transactional_db" if transactional else "db")
    for industry in INDUSTRIES:
        RfmBenchmark.objects.get_or_create(
            id=preset_id(industry),
            defaults={"merchant": None, "industry": industry, "thresholds": preset_thresholds(industry)},
        )


@pytest.fixture
def analyst(merchant):
    """A staff member holding admin:analytics (the owner)."""
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90011", role="owner")


@pytest.fixture
def support(merchant):
    """A staff member without admin:analytics."""
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90012", role="support")
