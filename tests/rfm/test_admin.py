"""Django admin of the RFM models: every changelist and change page loads, read-only."""

import pytest
from django.urls import reverse

from apps.core.tenancy import merchant_scope
from apps.rfm import services
from apps.rfm.models import ChurnModel, ChurnNudge, RfmBenchmark, RfmExperiment, RfmRun, RfmScoreHistory, RfmSettings
from tests.factories import CustomerFactory

from .conftest import NOW, build_history


@pytest.fixture
def rows(merchant):
    build_history(merchant, customers=40, seed=11)
    with merchant_scope(merchant):
        services.rfm_thresholds_update(merchant=merchant, industry="Pet Store", thresholds={"recency": "<=10"})
        services.rfm_settings_update(merchant=merchant, horizon_days=60)
        run = services.rfm_scores_refresh(merchant=merchant, now=NOW)
        model = services.churn_model_train(merchant=merchant, now=NOW)
        experiment = services.rfm_experiment_start(merchant=merchant, name="Test", thresholds_b={"recency": "<=7"})
    customer = CustomerFactory(merchant=merchant, churn_score=0.9)
    nudge = ChurnNudge.objects.create(merchant=merchant, customer=customer, churn_score=0.9, window=1)
    return {
        RfmBenchmark: RfmBenchmark.objects.filter(merchant=merchant).first(),
        RfmSettings: RfmSettings.objects.get(merchant=merchant),
        RfmRun: run,
        RfmScoreHistory: RfmScoreHistory.objects.filter(run_id=run.pk).first(),
        ChurnModel: model,
        ChurnNudge: nudge,
        RfmExperiment: experiment,
    }


@pytest.mark.parametrize(
    "model",
    [RfmBenchmark, RfmSettings, RfmRun, RfmScoreHistory, ChurnModel, ChurnNudge, RfmExperiment],
    ids=lambda m: m.__name__,
)
def test_changelists_and_change_pages_load_and_are_read_only(client, admin_user, rows, model):
    client.force_login(admin_user)
    name = model._meta.model_name

    listing = client.get(reverse(f"admin:rfm_{name}_changelist"))
    page = client.get(reverse(f"admin:rfm_{name}_change", args=[rows[model].pk]))

    assert listing.status_code == 200 and page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(reverse(f"admin:rfm_{name}_add")).status_code == 403
