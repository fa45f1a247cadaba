"""Threshold A/B tests: deterministic assignment, nudges per variant, two-proportion test."""

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.core.models import AuditLog, Customer
from apps.core.tenancy import merchant_scope
from apps.rfm import services
from apps.rfm.experiments import VariantResult, two_proportion_test, variant_for
from apps.rfm.models import ChurnNudge, RfmExperiment
from tests.factories import CustomerFactory, OrderFactory
from tests.shopify_helpers import auth_header, session_token

from .conftest import NOW

URL = "/v1/api/rfm/experiments"


def test_assignment_is_deterministic_and_follows_the_split():
    ids = [f"cus_{n:05d}" for n in range(4000)]

    first = [variant_for("exp_1", cid, 30) for cid in ids]

    assert first == [variant_for("exp_1", cid, 30) for cid in ids]
    assert 0.27 < first.count("B") / len(ids) < 0.33
    assert first != [variant_for("exp_2", cid, 30) for cid in ids]


def test_the_two_proportion_test_matches_a_worked_example():
    # 200/1000 vs 250/1000: pooled p = 0.225, z = 0.05 / sqrt(0.225 * 0.775 * 0.002) = 0.05 / 0.018675 = 2.6774.
    result = two_proportion_test(VariantResult("A", 1000, 200), VariantResult("B", 1000, 250))

    assert result["lift"] == pytest.approx(0.05)
    assert result["z"] == pytest.approx(2.6774, abs=1e-3)
    assert result["p_value"] == pytest.approx(0.0073, abs=5e-4)
    assert result["significant"] is True
    assert result["ci_low"] == pytest.approx(0.05 - 1.96 * 0.018655, abs=1e-3)
    assert result["ci_low"] > 0


def test_no_difference_is_not_significant():
    result = two_proportion_test(VariantResult("A", 50, 10), VariantResult("B", 50, 11))

    assert result["significant"] is False and result["ci_low"] < 0 < result["ci_high"]


def test_an_experiment_nudges_each_variants_at_risk_customers_and_reports_conversions(
    api, client, analyst, other_merchant, django_capture_on_commit_callbacks
):
    merchant = analyst.merchant
    # 100 days since the last order, 4 orders: At-Risk under the Pet Store bars (R2) and
    # under variant B's (R <= 200 days is level 4 there: Loyal, so not nudged in B).
    customers = [
        CustomerFactory(
            merchant=merchant,
            orders_count=4,
            total_spent=Decimal("300"),
            last_order_at=NOW - timedelta(days=100),
            lifecycle_stage="repeat_buyer",
        )
        for _ in range(40)
    ]
    response = api.post(
        URL,
        data={
            "name": "Longer recency",
            "thresholds": {"recency": {"5": "<=150", "4": "<=200", "3": "<=300", "2": "<=400"}},
            "split_percent": 50,
        },
        format="json",
        **auth_header(analyst),
    )
    assert response.status_code == 201
    experiment = RfmExperiment.objects.get(pk=response.json()["experiment"]["experiment_id"])
    in_a = [c for c in customers if variant_for(experiment.pk, c.pk, 50) == "A"]

    with merchant_scope(merchant), django_capture_on_commit_callbacks(execute=True):
        nudged = services.churn_nudges_send(merchant=merchant, now=NOW)
    ChurnNudge.objects.filter(experiment=experiment).update(created_at=NOW)
    OrderFactory(merchant=merchant, customer=in_a[0], processed_at=NOW + timedelta(days=3))

    assert nudged == len(in_a)
    assert set(ChurnNudge.objects.filter(experiment=experiment).values_list("customer_id", flat=True)) == {
        c.pk for c in in_a
    }
    with merchant_scope(merchant):
        results = services.rfm_experiment_results(
            merchant=merchant, experiment=experiment, now=NOW + timedelta(days=40)
        )
    variants = {v["variant"]: v for v in results["variants"]}
    assert variants["A"]["nudged"] == len(in_a) and variants["A"]["converted"] == 1
    assert variants["B"]["nudged"] == 0
    assert results["minimum_sample_warning"] is True
    assert AuditLog.objects.filter(merchant=merchant, action="rfm_experiment_started").count() == 1
    listed = api.get(URL, **auth_header(analyst)).json()["experiments"]
    assert [e["experiment_id"] for e in listed] == [experiment.pk]
    page = client.get("/app/rfm/", {"id_token": session_token(merchant.shop_domain, user_id=analyst.shopify_user_id)})
    assert "Longer recency" in page.content.decode() and 'data-table="experiment"' in page.content.decode()
    assert not Customer.objects.filter(
        merchant=other_merchant["merchant"], pk__in=[n.customer_id for n in ChurnNudge.objects.all()]
    ).exists()


def test_only_one_experiment_runs_at_a_time_and_another_shop_cannot_stop_it(api, analyst, other_merchant):
    body = {"name": "B", "thresholds": {"recency": "<=7"}}
    first = api.post(URL, data=body, format="json", **auth_header(analyst))
    second = api.post(URL, data=body, format="json", **auth_header(analyst))
    experiment_id = first.json()["experiment"]["experiment_id"]

    foreign = api.post(f"{URL}/{experiment_id}/stop", **auth_header(other_merchant["owner"]))

    assert first.status_code == 201 and second.status_code == 409
    assert foreign.status_code == 404
    assert RfmExperiment.objects.get(pk=experiment_id).status == "running"
    assert api.get(URL, **auth_header(other_merchant["owner"])).json()["experiments"] == []


def test_starting_an_experiment_needs_admin_analytics(api, support):
    response = api.post(
        URL, data={"name": "B", "thresholds": {"recency": "<=7"}}, format="json", **auth_header(support)
    )

    assert response.status_code == 403 and not RfmExperiment.objects.exists()


def test_bad_variant_thresholds_are_400(api, analyst):
    response = api.post(
        URL, data={"name": "B", "thresholds": {"recency": ">=7"}}, format="json", **auth_header(analyst)
    )

    assert response.status_code == 400 and "thresholds.recency.5" in response.json()["error"]["fields"]
    assert not RfmExperiment.objects.exists()
