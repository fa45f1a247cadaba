"""The embedded RFM page at /app/rfm/: wizard, distribution with its table, model card, at-risk
list, transitions — one shop's data only."""

from datetime import timedelta

import pytest

from apps.core.models import Customer
from apps.core.tenancy import merchant_scope
from apps.rfm import services
from tests.factories import CustomerFactory
from tests.shopify_helpers import session_token

from .conftest import NOW, build_history


def _open(client, staff, **params):
    params["id_token"] = session_token(staff.merchant.shop_domain, user_id=staff.shopify_user_id)
    return client.get("/app/rfm/", params)


@pytest.fixture
def scored(analyst, other_merchant):
    merchant = analyst.merchant
    build_history(merchant, customers=300, seed=7)
    with merchant_scope(merchant):
        services.rfm_scores_refresh(merchant=merchant, now=NOW - timedelta(days=1))
        services.rfm_thresholds_update(merchant=merchant, industry="Pet Store", thresholds={"recency": "<=7"})
        services.rfm_scores_refresh(merchant=merchant, now=NOW)
        services.churn_model_train(merchant=merchant, now=NOW)
        services.churn_forecast(merchant=merchant, now=NOW)
    foreign = other_merchant["merchant"]
    CustomerFactory(merchant=foreign, first_name="Zed", last_name="Rivalsky", churn_score=0.99)
    return merchant


def test_the_page_shows_distribution_model_card_at_risk_and_transitions(client, analyst, scored):
    response = _open(client, analyst)

    assert response.status_code == 200
    html = response.content.decode()
    assert response["Content-Security-Policy"].startswith(f"frame-ancestors https://{scored.shop_domain}")
    # The chart has an accessible table with the seeds' five segments; it works without the CDN.
    assert 'data-table="distribution"' in html
    for label in ("Champions", "Loyal", "At-Risk", "New", "Inactive"):
        assert f'data-segment="{label}"' in html
    assert "#4CAF50" in html and "#F44336" in html
    assert 'data-metric="baseline"' in html and "Accuracy of predicting that everyone churns" in html
    assert 'data-table="trends"' in html
    assert "Segment transitions" in html and "Customers who moved between the last two nightly runs" in html
    risky = Customer.objects.filter(merchant=scored, churn_score__gte=0.7).exclude(lifecycle_stage="churned")
    assert risky.exists()
    assert risky.order_by("-churn_score", "id").first().display_name in html
    assert "Rivalsky" not in html


def test_the_nav_links_the_rfm_page(client, analyst, scored):
    html = client.get("/app/", {"id_token": session_token(scored.shop_domain)}).content.decode()

    assert 'href="/app/rfm/' in html


def test_the_wizard_previews_segment_counts_without_saving(client, analyst, scored):
    before = Customer.objects.filter(merchant=scored).values_list("id", "rfm_segment")

    response = _open(client, analyst, industry="electronics", recency_5="<=60", recency_4="<=90", preview="1")

    html = response.content.decode()
    assert 'data-table="preview"' in html
    assert 'value="&lt;=60"' in html and 'value="&gt;=6"' in html  # electronics' frequency bar
    assert list(Customer.objects.filter(merchant=scored).values_list("id", "rfm_segment")) == list(before)


def test_the_wizard_shows_bad_bars_as_errors(client, analyst, scored):
    response = _open(client, analyst, industry="pet_store", recency_5="<=500", preview="1")

    html = response.content.decode()
    assert 'role="alert"' in html and "Recency bars must grow from level 5 to level 2" in html
    assert 'data-table="preview"' not in html


def test_staff_without_admin_analytics_get_403(client, support, scored):
    assert _open(client, support).status_code == 403


def test_the_preview_endpoint_counts_only_the_callers_customers(api, analyst, scored, other_merchant):
    from tests.shopify_helpers import auth_header

    foreign = other_merchant["merchant"]
    build_history(foreign, customers=50, seed=8, prefix="f")
    before = list(Customer.objects.values_list("id", "rfm_segment").order_by("id"))

    body = api.post(
        "/v1/api/rfm/thresholds/preview",
        data={"industry": "Pet Store", "thresholds": {"method": "quintiles"}},
        format="json",
        **auth_header(analyst),
    ).json()

    assert body["status"] == "ok"
    scorable = Customer.objects.filter(merchant=scored, orders_count__gt=0).count()
    assert sum(g["count"] for g in body["distribution"]) == scorable
    assert list(Customer.objects.values_list("id", "rfm_segment").order_by("id")) == before


def test_segments_and_transitions_api_show_only_the_callers_data(api, analyst, scored, other_merchant):
    from tests.shopify_helpers import auth_header

    foreign = other_merchant["merchant"]
    build_history(foreign, customers=20, seed=9, prefix="g")
    with merchant_scope(foreign):
        services.rfm_scores_refresh(merchant=foreign, now=NOW)

    segments = api.get("/v1/api/rfm/segments", **auth_header(analyst)).json()
    transitions = api.get("/v1/api/rfm/transitions", **auth_header(analyst)).json()

    scored_count = Customer.objects.filter(merchant=scored).exclude(rfm_segment="").count()
    assert sum(g["count"] for g in segments["distribution"]) == scored_count
    assert transitions["transitions"] and transitions["from_run"] and transitions["to_run"]
    foreign_ids = set(Customer.objects.filter(merchant=foreign).values_list("id", flat=True))
    assert not foreign_ids & {c["customer_id"] for c in transitions["customers"]}
    from apps.rfm.models import RfmRun

    foreign_run = RfmRun.objects.filter(merchant=foreign).first()
    missing = api.get(
        "/v1/api/rfm/transitions", {"from_run": foreign_run.pk, "to_run": transitions["to_run"]}, **auth_header(analyst)
    )
    assert missing.status_code == 404


def test_the_lifecycle_forecast_sums_churn_scores_per_stage(client, analyst, scored):
    from django.db.models import Sum

    from apps.rfm.selectors import lifecycle_forecast

    with merchant_scope(scored):
        rows = {row["stage"]: row for row in lifecycle_forecast(merchant=scored)}

    expected = Customer.objects.filter(merchant=scored, lifecycle_stage="repeat_buyer").aggregate(s=Sum("churn_score"))
    assert rows["repeat_buyer"]["expected_churned"] == round(expected["s"])
    assert sum(row["customers"] for row in rows.values()) == Customer.objects.filter(merchant=scored).count()
    assert 'data-table="lifecycle"' in _open(client, analyst).content.decode()
