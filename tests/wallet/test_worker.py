"""A balance change reaches the shopper's iPhone through a real Celery worker process: the
ledger commit queues the push, the worker sends it to APNs (a fake on loopback) over HTTP/2."""

import jwt
import pytest

from apps.core.services.ledger import points_adjust
from apps.core.tenancy import merchant_scope
from apps.wallet.models import PushStatus, WalletPass
from tests.conftest import wait_for

from .conftest import PASS_TYPE_ID
from .test_updates import export_pass, register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker_process")]


def test_a_balance_change_is_pushed_to_apns_by_the_worker(api, merchant, shopper, apple_wallet, worker_apns):
    worker_apns.pushes.clear()
    worker_apns.respond = None
    wallet_pass = export_pass(api)
    register(api, wallet_pass, token="dd44")
    WalletPass.objects.filter(pk=wallet_pass.pk).update(push_status=PushStatus.CURRENT)

    with merchant_scope(merchant):
        points_adjust(merchant=merchant, customer=shopper, points=75, idempotency_key="worker-1", reason="test")

    wait_for(lambda: WalletPass.objects.get(pk=wallet_pass.pk).push_status == PushStatus.CURRENT)
    [push] = worker_apns.pushes
    assert push.device_token == "dd44" and push.http_version == "HTTP/2"
    assert push.headers["apns-topic"] == PASS_TYPE_ID and push.body == b"{}"
    token = push.headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token)["kid"] == "WORKERKEY1"
    assert jwt.decode(token, worker_apns.public_key, algorithms=["ES256"])["iss"] == "TEAMID1234"
    assert WalletPass.objects.get(pk=wallet_pass.pk).last_pushed_at is not None
