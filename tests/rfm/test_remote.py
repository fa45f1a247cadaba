"""The optional xAI adapter, against a local fake of its chat completions endpoint."""

import json

import pytest

from apps.core.models import AuditLog, Customer
from apps.core.tenancy import merchant_scope
from apps.rfm import services
from tests.fakes.http import FakeServer

from .conftest import NOW, build_history


def _completion(scores):
    return {"choices": [{"message": {"role": "assistant", "content": json.dumps({"scores": scores})}}]}


@pytest.fixture
def shop(merchant):
    build_history(merchant, customers=30, seed=31)
    with merchant_scope(merchant):
        services.churn_model_train(merchant=merchant, now=NOW)
    return merchant


@pytest.fixture
def xai(settings):
    def enable(respond):
        server = FakeServer(respond=respond).__enter__()
        settings.RFM_XAI_ENABLED = True
        settings.RFM_XAI_API_KEY = "xai-test-key"
        settings.RFM_XAI_BASE_URL = server.url
        settings.RFM_XAI_BATCH_SIZE = 20
        servers.append(server)
        return server

    servers = []
    yield enable
    for server in servers:
        server.__exit__(None, None, None)


def test_off_by_default_no_call_is_made(shop, settings):
    assert settings.RFM_XAI_ENABLED is False
    with merchant_scope(shop):
        forecasts = services.churn_forecast(merchant=shop, now=NOW)

    assert AuditLog.objects.get(action="churn_forecasted").metadata["scored_by"] == "recency_rule"
    assert len(forecasts) == 30


def test_enabled_it_scores_feature_rows_in_batches_without_personal_data(shop, xai):
    server = xai(
        lambda request: (200, _completion([0.25] * len(json.loads(request.json()["messages"][1]["content"]))), {})
    )

    with merchant_scope(shop):
        forecasts = services.churn_forecast(merchant=shop, now=NOW)

    assert [r.path for r in server.requests] == ["/chat/completions", "/chat/completions"]  # 30 rows, batches of 20
    first = server.requests[0]
    assert first.headers["Authorization"] == "Bearer xai-test-key"
    sent = json.dumps(first.json())
    customer = Customer.objects.filter(merchant=shop).first()
    assert customer.pk not in sent and customer.email not in sent and customer.shopify_customer_id not in sent
    assert {f["churn_score"] for f in forecasts} == {0.25}
    assert AuditLog.objects.get(action="churn_forecasted").metadata["scored_by"] == "remote"


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"error": "down"}, {}),
        (200, _completion([0.5]), {}),  # the wrong number of scores
        (200, _completion(["high"] * 20), {}),
        (200, {"choices": [{"message": {"content": "I think they will churn."}}]}, {}),
    ],
    ids=["server-error", "wrong-count", "not-numbers", "prose"],
)
def test_a_bad_answer_falls_back_to_the_shops_own_model(shop, xai, answer):
    xai(lambda request: answer)

    with merchant_scope(shop):
        forecasts = services.churn_forecast(merchant=shop, now=NOW)

    assert len(forecasts) == 30 and len({f["churn_score"] for f in forecasts}) > 1
    assert AuditLog.objects.get(action="churn_forecasted").metadata["scored_by"] == "recency_rule"
