"""The Celery tasks, run in-process: the nightly chain on an empty and a busy shop."""

from apps.core.models import Customer
from apps.rfm.models import ChurnModel, RfmRun
from apps.rfm.tasks import rfm_incremental_all_task, rfm_nightly_task, rfm_scores_refresh_task
from tests.celery_queues import queued_messages

from .conftest import build_history


def test_the_nightly_chain_on_a_shop_without_customers_labels_its_fallback(merchant):
    result = rfm_nightly_task(merchant_id=merchant.pk)

    assert result["forecasts"] == 0 and result["nudged"] == 0
    assert ChurnModel.objects.get(merchant=merchant).algorithm == "recency_rule"


def test_the_nightly_chain_scores_trains_and_forecasts_one_shop_only(merchant, other_merchant):
    build_history(merchant, customers=60, seed=51)

    result = rfm_nightly_task(merchant_id=merchant.pk)

    assert result["forecasts"] == 60
    assert RfmRun.objects.get(pk=result["run_id"]).customers_scored == 60
    assert not Customer.objects.filter(merchant=merchant, churn_score__isnull=True).exists()
    assert not RfmRun.objects.filter(merchant=other_merchant["merchant"]).exists()
    assert Customer.objects.filter(merchant=other_merchant["merchant"], churn_score__isnull=False).count() == 0


def test_uninstalled_shops_are_skipped_and_the_fan_out_queues_one_task_per_installed_shop(merchant, other_merchant):
    other_merchant["merchant"].is_installed = False
    other_merchant["merchant"].save()

    assert rfm_scores_refresh_task(merchant_id=other_merchant["merchant"].pk) is None
    assert rfm_incremental_all_task() == 1
    queued = queued_messages()
    assert [m["headers"]["task"] for m in queued] == ["apps.rfm.tasks.rfm_scores_refresh_task"]
