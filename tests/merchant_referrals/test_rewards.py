"""Rewards: a completed referral's app credit through Shopify billing, granted exactly once."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from apps.core.models import AuditLog, Merchant
from apps.merchant_referrals.models import (
    MerchantReferral,
    MerchantReferralOwner,
    MerchantReferralReward,
    RewardStatus,
)
from apps.merchant_referrals.rewards import merchant_referral_reward_apply, merchant_referral_reward_retry
from apps.merchant_referrals.services import (
    merchant_referral_attribute,
    merchant_referral_complete,
    merchant_referral_link_create,
)
from apps.merchant_referrals.tasks import merchant_referral_reward_apply_task
from apps.notifications.models import Notification, NotificationSettings
from apps.shopify.graphql import ShopifyError
from apps.shopify.models import ShopifyInstallation
from tests.conftest import wait_for
from tests.fakes.shopify_ops_billing import PARTNERS
from tests.shopify_helpers import shopify_connect


@pytest.fixture
def completed(link, referred, advocate, partner_billing):
    shopify_connect(partner_billing, advocate)
    shopify_connect(partner_billing, referred)
    ShopifyInstallation.objects.filter(merchant=advocate).update(
        shop_gid=partner_billing.shop(advocate.shop_domain).gid
    )
    referral = merchant_referral_attribute(referred=referred, code=link.code)
    MerchantReferral.objects.filter(pk=referral.pk).update(created_at=timezone.now() - timedelta(days=31))
    Merchant.objects.filter(pk=referred.pk).update(installed_at=timezone.now() - timedelta(days=32))
    return merchant_referral_complete(referral=referral)


def _worker_idle() -> bool:
    """No task running or waiting in the worker (so the test's database flush cannot deadlock with it)."""
    from loyalnest.celery import app

    inspector = app.control.inspect(timeout=1.0)
    active, reserved = inspector.active(), inspector.reserved()
    return active is not None and not any(active.values()) and not any((reserved or {}).values())


def credits(fake, merchant):
    return fake.shop(merchant.shop_domain).data.get("app_credits", [])


def test_the_advocate_gets_one_month_free_as_an_app_credit(completed, partner_billing, advocate, owner):
    reward = MerchantReferralReward.objects.get(referral=completed)

    applied = merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)

    assert applied.status == RewardStatus.APPLIED
    [credit] = credits(partner_billing, advocate)
    assert credit["amount"] == {"amount": "29.00", "currencyCode": "USD"} and credit["test"] is True
    assert reward.pk in credit["name"]
    assert applied.shopify_credit_id == credit["id"]
    [(shop, variables)] = partner_billing.calls_of("AppCreditCreate")
    assert shop == PARTNERS and variables["appId"] == "gid://partners/App/42"
    assert variables["shopId"].startswith("gid://partners/Shop/")
    assert AuditLog.objects.filter(merchant=advocate, action="merchant_referral_reward_applied").count() == 1
    assert Notification.objects.filter(
        merchant=advocate, type="merchant_referral_status", idempotency_key__contains="reward_applied"
    ).exists()


def test_retries_and_redeliveries_credit_once(completed, partner_billing, advocate):
    reward = MerchantReferralReward.objects.get(referral=completed)

    for _ in range(3):
        merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)
        merchant_referral_reward_apply_task.apply(kwargs={"merchant_id": advocate.pk, "reward_id": reward.pk})
    merchant_referral_complete(referral=completed)  # completing again grants nothing new

    assert len(credits(partner_billing, advocate)) == 1
    assert MerchantReferralReward.objects.filter(referral=completed).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_credit_once(link, referred, advocate, partner_billing, broker_down):
    # broker_down: the reward task the completion queues would reach the session's Celery worker,
    # which would still be running it while this test's database is flushed.
    shopify_connect(partner_billing, advocate)
    referral = merchant_referral_attribute(referred=referred, code=link.code)
    merchant_referral_complete(referral=referral, actor=None)
    reward = MerchantReferralReward.objects.get(referral=referral)
    barrier = threading.Barrier(5)

    def worker():
        try:
            barrier.wait()
            merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(credits(partner_billing, advocate)) == 1
    assert MerchantReferralReward.objects.get(pk=reward.pk).status == RewardStatus.APPLIED


def test_a_shopify_outage_is_retried_then_applied_once(completed, partner_billing, advocate):
    reward = MerchantReferralReward.objects.get(referral=completed)
    partner_billing.fail_next(1, status=503)

    with pytest.raises(ShopifyError) as raised:
        merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)
    assert raised.value.retryable
    reward.refresh_from_db()
    assert reward.status == RewardStatus.PENDING and "503" in reward.last_error

    assert merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk).status == RewardStatus.APPLIED
    assert len(credits(partner_billing, advocate)) == 1


def test_a_refusal_fails_the_reward_and_staff_can_retry(completed, partner_billing, advocate, admin_user):
    reward = MerchantReferralReward.objects.get(referral=completed)
    partner_billing.shop(PARTNERS).data["refuse"] = "Amount exceeds the charges of the last 30 days"

    failed = merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)

    assert failed.status == RewardStatus.FAILED and "exceeds" in failed.last_error
    assert not credits(partner_billing, advocate)
    partner_billing.shop(PARTNERS).data.pop("refuse")
    merchant_referral_reward_retry(reward=failed, actor=admin_user)
    assert merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk).status == RewardStatus.APPLIED
    assert AuditLog.objects.filter(action="merchant_referral_reward_retried", staff_user=admin_user).count() == 1


def test_without_partner_settings_the_reward_waits(completed, settings, advocate, partner_billing):
    settings.SHOPIFY_PARTNER_API_TOKEN = ""
    reward = MerchantReferralReward.objects.get(referral=completed)

    waiting = merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)

    assert waiting.status == RewardStatus.PENDING and not partner_billing.calls_of("AppCreditCreate")


def test_completion_reaches_slack_only_when_the_merchant_has_it(link, referred, advocate, partner_billing):
    NotificationSettings.objects.create(merchant=advocate, slack_webhook_url="https://hooks.slack.com/services/T/B/x")
    referral = merchant_referral_attribute(referred=referred, code=link.code)

    merchant_referral_complete(referral=referral)

    slack = Notification.objects.get(merchant=advocate, type="referral_completed")
    assert slack.channel == "slack" and slack.context["referred_shop"] == referred.shop_domain
    assert not Notification.objects.filter(merchant=referred, type="referral_completed").exists()


def test_no_slack_without_configuration(completed, advocate):
    assert not Notification.objects.filter(merchant=advocate, type="referral_completed").exists()
    assert Notification.objects.filter(merchant=advocate, type="merchant_referral_status").count() == 2


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_applies_the_reward_after_completion_once(make_shop, partner_billing, celery_worker_process):
    # Shops without staff: no email is queued, so the worker has nothing left to do (and no
    # table open) when the test's database flush runs.
    advocate = make_shop("mu-market.myshopify.com", owner_role=False)
    referred = make_shop("nu-novelties.myshopify.com", owner_role=False)
    shopify_connect(partner_billing, advocate)
    link, _created = merchant_referral_link_create(merchant=advocate)  # queues the metafield and owner tasks
    referral = merchant_referral_attribute(referred=referred, code=link.code)

    merchant_referral_complete(referral=referral)  # commits: the apply task goes to the worker
    merchant_referral_complete(referral=referral)  # again: nothing new is queued

    wait_for(lambda: MerchantReferralReward.objects.get(referral_id=referral.pk).status == RewardStatus.APPLIED)
    wait_for(lambda: partner_billing.calls_of("ShopMetafieldsSet") and MerchantReferralOwner.objects.exists())
    wait_for(_worker_idle)
    assert len(credits(partner_billing, advocate)) == 1
    assert not credits(partner_billing, referred)
    assert not Notification.objects.exists()


def test_a_lost_answer_is_never_resent_automatically(completed, partner_billing, advocate, settings):
    """Shopify credited the shop but the answer timed out: the row stays `applying` for staff,
    and neither a retry nor the task sends the credit again."""
    import time

    from apps.shopify import http as shopify_http

    handler, cost = partner_billing.operations["AppCreditCreate"]

    def slow(fake, shop, variables):
        time.sleep(1.0)
        return handler(fake, shop, variables)

    partner_billing.operations["AppCreditCreate"] = (slow, cost)
    settings.SHOPIFY_READ_TIMEOUT_SECONDS = 0.3
    shopify_http._client.cache_clear()
    reward = MerchantReferralReward.objects.get(referral=completed)

    first = merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)
    time.sleep(1.2)  # the slow answer lands in the fake: Shopify did credit the shop
    again = merchant_referral_reward_apply(merchant_id=advocate.pk, reward_id=reward.pk)
    merchant_referral_reward_apply_task.apply(kwargs={"merchant_id": advocate.pk, "reward_id": reward.pk})

    assert first.status == RewardStatus.APPLYING and again is None
    reward.refresh_from_db()
    assert reward.status == RewardStatus.APPLYING and "outcome unknown" in reward.last_error
    assert len(credits(partner_billing, advocate)) == 1
    assert len(partner_billing.calls_of("AppCreditCreate")) == 1
    shopify_http._client.cache_clear()
