"""Churn models: time split, model card, too little history, forecasts, backtest, nudges."""

import base64
import json
import tomllib
from datetime import timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from apps.core.models import AuditLog, Customer
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from apps.core.tenancy import merchant_scope
from apps.notifications.models import Notification
from apps.rfm import services
from apps.rfm.churn import _fit, features_as_of, predict
from apps.rfm.models import ChurnModel, ChurnNudge
from tests.celery_queues import queued_messages, queued_task_names
from tests.shopify_helpers import auth_header

from .conftest import NOW, build_history

FORECAST = "/v1/api/rfm/forecast"


@pytest.fixture
def history(merchant):
    return build_history(merchant, customers=400, seed=3)


def _train(merchant, **kwargs):
    with merchant_scope(merchant):
        return services.churn_model_train(merchant=merchant, now=NOW, **kwargs)


def test_a_model_is_trained_with_a_time_split_and_an_honest_card(merchant, history, other_merchant):
    model = _train(merchant)

    assert model.algorithm in ("logistic_regression", "mlp")
    assert model.cutoff_at == NOW - timedelta(days=90) and model.horizon_days == 90
    assert model.customers > 200 and model.validation_customers > 200
    assert model.auc > 0.7
    # The baseline is the accuracy of predicting "everyone churns": the validation churn rate.
    assert model.baseline_accuracy == model.churn_rate
    assert 0 < model.baseline_accuracy < 1
    assert model.accuracy > model.baseline_accuracy
    # The neural network joins the automatic choice only for the `rfm_advanced` beta (tests/slack_community).
    assert {c["algorithm"] for c in model.candidates} == {"logistic_regression"}
    assert model.note == ""
    assert not ChurnModel.objects.filter(merchant=other_merchant["merchant"]).exists()


@pytest.mark.parametrize("kind", ["logistic_regression", "mlp"])
def test_stored_parameters_reproduce_scikit_learns_probabilities(merchant, history, kind):
    from sklearn.linear_model import LogisticRegression

    data = features_as_of(merchant_id=merchant.pk, cutoff=NOW - timedelta(days=90), horizon_days=90, label_until=NOW)
    parameters = _fit(kind, data)

    ours = predict(parameters, data, 90)

    json.dumps(parameters)  # plain numbers only, nothing to unpickle
    assert ours.shape == (len(data.customer_ids),) and ((ours >= 0) & (ours <= 1)).all()
    if kind == "logistic_regression":
        x = (data.matrix - np.array(parameters["mean"])) / np.array(parameters["scale"])
        reference = LogisticRegression(max_iter=300).fit(x, data.labels).predict_proba(x)[:, 1]
        assert np.allclose(ours, reference, atol=1e-6)


def test_the_mlp_can_be_chosen(merchant, history):
    model = _train(merchant, algorithm="mlp")

    assert model.algorithm == "mlp" and len(model.parameters["coefs"]) == 2


def test_too_little_history_falls_back_to_a_labelled_recency_rule(merchant):
    build_history(merchant, customers=30, seed=4)

    model = _train(merchant)

    assert model.algorithm == "recency_rule" and model.note == "too_little_history"
    assert model.parameters["kind"] == "recency_rule"
    with merchant_scope(merchant):
        forecasts = services.churn_forecast(merchant=merchant, now=NOW)
    assert len(forecasts) == 30 and all(0 <= f["churn_score"] <= 1 for f in forecasts)


def test_forecast_api_updates_customers_streams_audits_and_answers_as_the_seeds(
    api, analyst, history, other_merchant, django_capture_on_commit_callbacks
):
    merchant = analyst.merchant
    _train(merchant)
    chosen = [c.pk for c in history[:5]]
    foreign = other_merchant["customers"][0]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            FORECAST,
            data={"merchant_id": merchant.pk, "customer_ids": chosen, "locale": "en"},
            format="json",
            **auth_header(analyst),
        )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    assert [f["customer_id"] for f in body["forecasts"]] == sorted(chosen)
    assert all(set(f) == {"customer_id", "churn_score", "lifecycle_stage"} for f in body["forecasts"])
    rows = {c.pk: c for c in Customer.objects.filter(pk__in=chosen)}
    for forecast in body["forecasts"]:
        assert rows[forecast["customer_id"]].churn_score == pytest.approx(forecast["churn_score"], abs=1e-4)
        assert rows[forecast["customer_id"]].lifecycle_stage == forecast["lifecycle_stage"]
    assert Customer.objects.filter(merchant=merchant, churn_score__isnull=False).count() == 5
    entry = get_redis().xrevrange(stream_name(merchant.pk, f"rfm:{chosen[0]}"), count=1)[0][1]
    assert json.loads(entry["data"])["customer_id"] == chosen[0]
    audit = AuditLog.objects.get(merchant=merchant, action="churn_forecasted")
    assert audit.metadata["customers"] == 5 and audit.actor_id == analyst.pk
    queued = queued_task_names()
    assert "apps.shopify.metafields.customer_metafields_sync_task" in queued
    foreign.refresh_from_db()
    assert foreign.churn_score is None


def test_forecasting_another_shops_customer_is_404_and_changes_nothing(api, analyst, history, other_merchant):
    foreign = other_merchant["customers"][0]

    response = api.post(
        FORECAST, data={"customer_ids": [history[0].pk, foreign.pk]}, format="json", **auth_header(analyst)
    )

    assert response.status_code == 404
    assert not Customer.objects.filter(churn_score__isnull=False).exists()
    assert not AuditLog.objects.filter(action="churn_forecasted").exists()
    assert not ChurnModel.objects.exists()


def test_forecast_without_admin_analytics_is_403_and_changes_nothing(api, support, history):
    response = api.post(FORECAST, data={"customer_ids": [history[0].pk]}, format="json", **auth_header(support))

    assert response.status_code == 403
    assert not Customer.objects.filter(churn_score__isnull=False).exists()
    assert not AuditLog.objects.filter(action="churn_forecasted").exists()


def test_forecast_input_is_validated(api, analyst):
    response = api.post(FORECAST, data={"customer_ids": []}, format="json", **auth_header(analyst))

    assert response.status_code == 400 and "customer_ids" in response.json()["error"]["fields"]


def test_the_model_card_is_served(api, analyst, history, other_merchant):
    model = _train(analyst.merchant)

    card = api.get("/v1/api/rfm/model", **auth_header(analyst)).json()["model"]

    assert card["model_id"] == model.pk
    assert card["baseline_accuracy"] == model.baseline_accuracy and card["fallback"] is False


def test_backtest_prints_auc_accuracy_and_the_baseline(merchant, history):
    out = StringIO()

    call_command(
        "rfm_backtest",
        shop=merchant.shop_domain,
        as_of=(NOW - timedelta(days=90)).date().isoformat(),
        horizon_days=90,
        stdout=out,
        stderr=StringIO(),
    )

    text = out.getvalue()
    assert "AUC: 0." in text and "accuracy: 0." in text
    assert "baseline accuracy (everyone churns): 0." in text
    auc = float(text.split("\nAUC: ")[1].split()[0])
    assert auc > 0.7
    assert not ChurnModel.objects.exists()  # a backtest writes nothing


def test_backtest_refuses_an_unknown_shop(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("rfm_backtest", shop="nope.myshopify.com", as_of="2026-01-01", horizon_days=90)


def test_nudges_go_once_per_customer_per_window(merchant, other_merchant, django_capture_on_commit_callbacks):
    risky = build_history(merchant, customers=3, seed=5)
    Customer.objects.filter(pk__in=[c.pk for c in risky]).update(churn_score=0.9, lifecycle_stage="repeat_buyer")
    Customer.objects.filter(pk=risky[2].pk).update(churn_score=0.2)
    Customer.objects.filter(pk=other_merchant["customers"][0].pk).update(churn_score=0.99)

    with merchant_scope(merchant), django_capture_on_commit_callbacks(execute=True):
        first = services.churn_nudges_send(merchant=merchant, now=NOW)
        again = services.churn_nudges_send(merchant=merchant, now=NOW + timedelta(days=1))

    assert (first, again) == (2, 0)
    assert set(ChurnNudge.objects.values_list("customer_id", flat=True)) == {risky[0].pk, risky[1].pk}
    assert (
        Notification.objects.filter(merchant=merchant, type="churn_risk_nudge").values("customer").distinct().count()
        == 2
    )
    assert not Notification.objects.filter(merchant=other_merchant["merchant"]).exists()
    messages = queued_messages()
    flow = [m for m in messages if m["headers"]["task"] == "apps.shopify.flow.triggers.flow_trigger_fire_task"]
    assert len(flow) == 2
    # The payload carries exactly the fields the trigger extension declares.
    _args, kwargs, _embed = json.loads(base64.b64decode(flow[0]["body"]))
    extension = tomllib.loads(
        (Path(__file__).resolve().parents[2] / "extensions/loyalnest-churn-risk/shopify.extension.toml").read_text()
    )
    assert kwargs["handle"] == extension["extensions"][0]["handle"]
    declared = {f["key"] for f in extension["settings"]["fields"] if "key" in f}
    assert set(kwargs["payload"]) == declared | {"customer_id"}


def test_too_little_history_borrows_a_model_pooled_over_the_industry(merchant, other_merchant):
    from tests.factories import MerchantFactory

    build_history(merchant, customers=30, seed=61)
    peer = MerchantFactory(industry="pet_store")
    build_history(peer, customers=400, seed=62, prefix="p")
    elsewhere = other_merchant["merchant"]  # electronics' history is not pooled for a pet store
    elsewhere.industry = "electronics"
    elsewhere.save()

    model = _train(merchant)

    assert model.algorithm == "pooled_industry" and model.note == "too_little_history"
    assert model.candidates == [
        {"algorithm": "pooled_industry", "stores": 1, "customers": 400, "auc": pytest.approx(0.9, abs=0.1)}
    ]
    assert model.validation_customers == 30  # measured on the shop's own customers
    with merchant_scope(merchant):
        forecasts = services.churn_forecast(merchant=merchant, now=NOW)
    assert {f["customer_id"] for f in forecasts} == set(
        Customer.objects.filter(merchant=merchant).values_list("id", flat=True)
    )
    assert not ChurnModel.objects.filter(merchant=peer).exists()
