"""The embedded dashboard's notifications section: delivery rates and failures per type, of
the signed-in shop only."""

import pytest

from apps.notifications.models import Notification, State
from apps.notifications.services import notify
from tests.notifications.support import subscribed_customer
from tests.shopify_helpers import session_token

pytestmark = pytest.mark.django_db


def _outcome(rows, *states, error="postscript answered HTTP 400"):
    for row, state in zip(rows, states, strict=True):
        Notification.objects.filter(pk=row.pk).update(state=state, last_error=error if state == State.FAILED else "")


def test_the_dashboard_shows_delivery_rates_and_failures_per_type(client, merchant, other_merchant):
    for i in range(3):
        rows = notify(
            merchant=merchant,
            type="streak_earned",
            customer=subscribed_customer(merchant),
            context={"streak_count": 5},
            idempotency_key=f"s{i}",
        )
        _outcome(rows, State.SENT, State.FAILED if i == 0 else State.SENT)
    rival_rows = notify(
        merchant=other_merchant["merchant"],
        type="wallet_exported",
        customer=other_merchant["customers"][0],
        context={"points_balance": 5, "pass_url": "https://x"},
        idempotency_key="w",
    )
    _outcome(rival_rows, State.FAILED, State.FAILED, error="rival secret failure")

    page = client.get("/app/", {"id_token": session_token(merchant.shop_domain)}).content.decode()

    assert 'data-notification-type="streak_earned"' in page
    assert 'data-metric="delivery-rate"><bdi>83%</bdi>' in page  # 5 sent of 6 finished
    assert "Purchase streak earned (SMS): <bdi>postscript answered HTTP 400</bdi>" in page
    assert "wallet_exported" not in page and "rival secret failure" not in page


def test_a_shop_without_notifications_sees_an_empty_state(client, merchant):
    page = client.get("/app/", {"id_token": session_token(merchant.shop_domain)}).content.decode()

    assert "No notifications sent yet." in page
