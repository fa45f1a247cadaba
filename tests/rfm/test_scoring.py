"""Set-based scoring: R/F/M levels, segments, history rows, incremental runs, transitions."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from apps.core.models import Customer
from apps.core.tenancy import merchant_scope
from apps.rfm import services
from apps.rfm.models import RfmRun, RfmScoreHistory
from apps.rfm.scoring import segment_for
from apps.rfm.selectors import segment_distribution, segment_transitions
from tests.factories import CustomerFactory, VipTierFactory

from .conftest import NOW


def _customer(merchant, *, days_ago, orders, spent, **extra):
    return CustomerFactory(
        merchant=merchant,
        orders_count=orders,
        total_spent=Decimal(spent),
        last_order_at=NOW - timedelta(days=days_ago) if days_ago is not None else None,
        **extra,
    )


def _refresh(merchant, **kwargs):
    with merchant_scope(merchant):
        return services.rfm_scores_refresh(merchant=merchant, now=kwargs.pop("now", NOW), **kwargs)


def _save(merchant, thresholds, industry="pet_store"):
    with merchant_scope(merchant):
        return services.rfm_thresholds_update(merchant=merchant, industry=industry, thresholds=thresholds)


def test_pet_store_bars_score_and_segment_every_customer(merchant, other_merchant):
    # Pet Store preset: R <=14/30/60/120 days, F >=5/4/3/2 orders, M >500/250/100/40.
    champion = _customer(merchant, days_ago=3, orders=9, spent="900")
    new = _customer(merchant, days_ago=5, orders=1, spent="30")
    at_risk = _customer(merchant, days_ago=100, orders=4, spent="300")
    lost = _customer(merchant, days_ago=400, orders=1, spent="20")
    never = _customer(merchant, days_ago=None, orders=0, spent="0")
    vip = _customer(merchant, days_ago=20, orders=6, spent="600", vip_tier=VipTierFactory(merchant=merchant))
    foreign = _customer(other_merchant["merchant"], days_ago=3, orders=9, spent="900")

    run = _refresh(merchant)

    assert run.customers_scored == 5 and run.kind == "full"
    history = {h.customer_id: h for h in RfmScoreHistory.objects.filter(run_id=run.pk)}
    assert set(history) == {champion.pk, new.pk, at_risk.pk, lost.pk, vip.pk}
    assert history[champion.pk].rfm_score == {"recency": 5, "frequency": 5, "monetary": 5, "score": 5.0}
    assert history[new.pk].rfm_score["recency"] == 5 and history[new.pk].rfm_score["frequency"] == 1
    assert history[at_risk.pk].rfm_score == {"recency": 2, "frequency": 4, "monetary": 4, "score": 3.2}
    rows = {c.pk: (c.rfm_segment, c.lifecycle_stage) for c in Customer.objects.filter(merchant=merchant)}
    assert rows[champion.pk] == ("champions", "repeat_buyer")
    assert rows[new.pk] == ("new", "new_lead")
    assert rows[at_risk.pk] == ("at_risk", "churned")  # no order for 100 days > the 90-day horizon
    assert rows[lost.pk] == ("lost", "churned")
    assert rows[vip.pk] == ("loyal", "vip")
    assert rows[never.pk] == ("", "new_lead")
    foreign.refresh_from_db()
    assert foreign.rfm_segment == "" and not RfmScoreHistory.objects.filter(customer=foreign).exists()
    with merchant_scope(merchant):
        groups = {g["key"]: g["count"] for g in segment_distribution(merchant=merchant)}
    assert groups == {"Champions": 1, "Loyal": 1, "At-Risk": 1, "New": 1, "Inactive": 1}


@pytest.mark.parametrize(
    ("r", "fm", "segment"),
    [
        (5, 5, "champions"),
        (4, 4, "loyal"),
        (3, 5, "loyal"),
        (5, 2, "potential_loyalist"),
        (5, 1, "new"),
        (4, 1, "promising"),
        (3, 3, "need_attention"),
        (3, 2, "about_to_sleep"),
        (2, 4, "at_risk"),
        (1, 5, "cant_lose"),
        (2, 2, "hibernating"),
        (1, 2, "hibernating"),
        (1, 1, "lost"),
    ],
)
def test_the_segment_map_covers_the_eleven_segments(r, fm, segment):
    assert segment_for(r, fm) == segment


def test_quintiles_put_a_fifth_of_customers_on_each_level(merchant):
    for index in range(10):
        _customer(merchant, days_ago=5 + index * 10, orders=index + 1, spent=str(10 * (index + 1)))
    _save(merchant, {"method": "quintiles"})

    run = _refresh(merchant)

    scores = [h.rfm_score for h in RfmScoreHistory.objects.filter(run_id=run.pk)]
    for dimension in ("recency", "frequency", "monetary"):
        assert sorted(s[dimension] for s in scores) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # The cut points are kept as bars for the incremental runs until the next full one.
    assert run.effective_thresholds["frequency"]["5"] == {"op": "gte", "value": 9}


def test_an_incremental_run_rescores_only_customers_with_new_orders(merchant):
    quiet = _customer(merchant, days_ago=50, orders=2, spent="100")
    buyer = _customer(merchant, days_ago=50, orders=2, spent="100")
    first = _refresh(merchant)
    Customer.objects.filter(pk=buyer.pk).update(last_order_at=NOW + timedelta(hours=1), orders_count=3)

    second = _refresh(merchant, incremental=True, now=NOW + timedelta(hours=2))

    assert second.kind == "incremental" and second.customers_scored == 1
    assert list(RfmScoreHistory.objects.filter(run_id=second.pk).values_list("customer_id", flat=True)) == [buyer.pk]
    assert RfmScoreHistory.objects.filter(run_id=first.pk).count() == 2
    buyer.refresh_from_db()
    quiet.refresh_from_db()
    assert buyer.rfm_segment == "potential_loyalist" and quiet.rfm_segment == "about_to_sleep"


def test_transitions_show_who_moved_between_two_runs(merchant, other_merchant):
    mover = _customer(merchant, days_ago=25, orders=5, spent="600")
    stayer = _customer(merchant, days_ago=3, orders=9, spent="900")
    _refresh(merchant, now=NOW)
    foreign = other_merchant["merchant"]
    _customer(foreign, days_ago=25, orders=5, spent="600")
    _refresh(foreign, now=NOW)
    _refresh(foreign, now=NOW + timedelta(days=30))

    _save(merchant, {"recency": {"5": "<=30", "4": "<=45"}})
    _refresh(merchant, now=NOW + timedelta(minutes=1))

    runs = list(RfmRun.objects.filter(merchant=merchant).order_by("started_at"))
    foreign_runs = list(RfmRun.objects.filter(merchant=foreign).values_list("pk", flat=True))
    with merchant_scope(merchant):
        moves = segment_transitions(merchant=merchant, from_run_id=runs[0].pk, to_run_id=runs[1].pk)
        leaked = segment_transitions(merchant=merchant, from_run_id=foreign_runs[0], to_run_id=foreign_runs[1])
    assert [(m["from"], m["to"], m["customers"]) for m in moves] == [("loyal", "champions", 1)]
    assert leaked == []
    assert RfmScoreHistory.objects.filter(customer=stayer).count() == 2
    assert Customer.objects.get(pk=mover.pk).rfm_segment == "champions"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitioning is PostgreSQL's")
def test_score_history_is_hash_partitioned_by_merchant_with_the_seeds_index(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT partstrat, count(i.inhrelid) FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid LEFT JOIN pg_inherits i ON i.inhparent = c.oid "
            "WHERE c.relname = 'rfm_score_history' GROUP BY partstrat"
        )
        assert cursor.fetchone() == ("h", 16)
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_rfm_score_history_customer_id'")
        assert "(customer_id, created_at)" in cursor.fetchone()[0]


def test_an_incremental_run_with_nobody_to_rescore_writes_nothing(merchant):
    _customer(merchant, days_ago=50, orders=2, spent="100")
    _refresh(merchant)

    assert _refresh(merchant, incremental=True, now=NOW + timedelta(minutes=15)) is None
    assert RfmRun.objects.filter(merchant=merchant).count() == 1


def test_an_incremental_run_also_rescores_customers_whose_row_changed(merchant):
    refunded = _customer(merchant, days_ago=10, orders=6, spent="900")
    _refresh(merchant)
    # A refund lowers the spend without a new order; the ledger reversal touches the row.
    Customer.objects.filter(pk=refunded.pk).update(total_spent=Decimal("90"), updated_at=NOW + timedelta(minutes=5))

    run = _refresh(merchant, incremental=True, now=NOW + timedelta(minutes=15))

    assert run.customers_scored == 1
    assert RfmScoreHistory.objects.get(run_id=run.pk).rfm_score["monetary"] == 2


def test_history_older_than_the_retention_is_pruned_but_the_latest_full_run_kept(merchant, other_merchant, settings):
    settings.RFM_HISTORY_RETENTION_DAYS = 30
    _customer(merchant, days_ago=5, orders=3, spent="100")
    foreign = other_merchant["merchant"]
    _customer(foreign, days_ago=5, orders=3, spent="100")
    old = _refresh(merchant, now=NOW - timedelta(days=60))
    middle = _refresh(merchant, now=NOW - timedelta(days=45))
    foreign_old = _refresh(foreign, now=NOW - timedelta(days=60))

    with merchant_scope(merchant):
        assert services.rfm_history_prune(merchant=merchant, now=NOW) == 1
        # Only the latest full run is left, however old: it is kept as the base.
        assert services.rfm_history_prune(merchant=merchant, now=NOW) == 0

    assert list(RfmRun.objects.filter(merchant=merchant).values_list("pk", flat=True)) == [middle.pk]
    assert not RfmScoreHistory.objects.filter(run_id=old.pk).exists()
    assert RfmScoreHistory.objects.filter(run_id=foreign_old.pk).count() == 1
