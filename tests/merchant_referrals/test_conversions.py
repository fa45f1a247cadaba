"""Conversions: attribution at install (cookie or listing parameter), self- and same-owner
referrals refused, completion after the qualifying period, expiry after the window."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.locales import LOCALES
from apps.core.models import AuditLog, Merchant
from apps.merchant_referrals.models import (
    MerchantReferral,
    MerchantReferralDaily,
    MerchantReferralOwner,
    MerchantReferralReward,
    ReferralStatus,
)
from apps.merchant_referrals.services import (
    NotEligible,
    SameOwnerRefused,
    SelfReferralRefused,
    merchant_referral_attribute,
    merchant_referral_link_create,
    merchant_referrals_advance,
    referral_token,
)
from apps.notifications.models import Notification
from tests.shopify_helpers import session_token, shopify_connect

NEW_SHOP = "epsilon-eats.myshopify.com"


def _age(referral, days):
    MerchantReferral.objects.filter(pk=referral.pk).update(created_at=timezone.now() - timedelta(days=days))
    Merchant.objects.filter(pk=referral.referred_merchant_id).update(
        installed_at=timezone.now() - timedelta(days=days + 1)
    )
    referral.refresh_from_db()
    return referral


def test_an_install_with_a_code_becomes_pending(link, referred, other_merchant, owner):
    Merchant.objects.filter(pk=link.merchant_id).update(primary_locale="de")
    link.merchant.refresh_from_db()
    referral = merchant_referral_attribute(referred=referred, code=link.code)

    assert referral.status == ReferralStatus.PENDING
    assert (referral.merchant_id, referral.referred_merchant_id, referral.reward_id) == (
        link.merchant_id,
        referred.pk,
        "1_month_free",
    )
    assert MerchantReferralDaily.objects.get(merchant=link.merchant).conversions == 1
    assert AuditLog.objects.filter(merchant=link.merchant, action="merchant_referral_pending").count() == 1
    mail = Notification.objects.get(merchant=link.merchant, type="merchant_referral_status")
    assert mail.staff_id == owner.pk
    assert mail.context["referred_shop"] == referred.shop_domain
    # In the advocate shop's language; the labels travel in every locale for the renderer.
    assert mail.locale == link.merchant.primary_locale == "de"
    assert set(mail.context["status"]) == set(LOCALES) and mail.context["status"]["en"] == "Pending"
    assert not MerchantReferral.objects.filter(merchant=other_merchant["merchant"]).exists()


def test_a_second_code_does_not_replace_the_first(link, referred, make_shop):
    first = merchant_referral_attribute(referred=referred, code=link.code)
    rival, _created = merchant_referral_link_create(merchant=make_shop("zeta-zone.myshopify.com"))

    again = merchant_referral_attribute(referred=referred, code=rival.code)

    assert again.pk == first.pk
    assert MerchantReferral.objects.filter(referred_merchant=referred).count() == 1


def test_self_referral_is_refused(link, advocate):
    with pytest.raises(SelfReferralRefused):
        merchant_referral_attribute(referred=advocate, code=link.code)

    assert not MerchantReferral.objects.exists()
    assert not MerchantReferralDaily.objects.filter(conversions__gt=0).exists()


def test_stores_of_the_same_owner_are_refused(link, referred):
    now = timezone.now()
    MerchantReferralOwner.objects.create(merchant=link.merchant, owner_hash="a" * 64, checked_at=now)
    MerchantReferralOwner.objects.create(merchant=referred, owner_hash="a" * 64, checked_at=now)

    with pytest.raises(SameOwnerRefused):
        merchant_referral_attribute(referred=referred, code=link.code)

    assert not MerchantReferral.objects.exists()
    refusal = AuditLog.objects.get(merchant=referred, action="merchant_referral_refused")
    assert refusal.metadata["reason"] == "same_owner"


def test_a_store_installed_long_ago_is_not_a_referral(link, make_shop):
    old = make_shop("eta-essentials.myshopify.com", installed_ago=timedelta(days=3))

    with pytest.raises(NotEligible):
        merchant_referral_attribute(referred=old, code=link.code)
    assert not MerchantReferral.objects.exists()


def test_a_new_install_through_the_embedded_app_is_attributed(link, fake_shopify, advocate):
    """The whole journey: /r/<code> sets the cookie, the shop installs (token exchange on its
    first embedded load with the cookie), and becomes the advocate's pending referral."""
    shopify_connect(fake_shopify, advocate)
    browser = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    assert browser.get(f"/r/{link.code}").status_code == 302

    page = browser.get("/app/", {"id_token": session_token(NEW_SHOP), "shop": NEW_SHOP})

    assert page.status_code == 200
    shop = Merchant.objects.get(shop_domain=NEW_SHOP)
    referral = MerchantReferral.objects.get(referred_merchant=shop)
    assert referral.merchant_id == advocate.pk and referral.status == ReferralStatus.PENDING
    assert page.cookies["loyalnest_mref"].value == ""  # used up
    # Both owners were read from Shopify for the same-owner check; only hashes are stored.
    hashes = dict(MerchantReferralOwner.objects.values_list("merchant_id", "owner_hash"))
    assert set(hashes) == {advocate.pk, shop.pk} and len(hashes[shop.pk]) == 64


def test_the_listing_parameter_works_without_the_cookie(link, fake_shopify, advocate):
    shopify_connect(fake_shopify, advocate)
    page = Client().get(
        "/app/", {"id_token": session_token(NEW_SHOP), "shop": NEW_SHOP, "mref": referral_token(link.code)}
    )

    assert page.status_code == 200
    assert MerchantReferral.objects.filter(referred_merchant__shop_domain=NEW_SHOP, merchant=advocate).exists()


def test_a_forged_parameter_is_ignored(link, fake_shopify, advocate):
    page = Client().get("/app/", {"id_token": session_token(NEW_SHOP), "shop": NEW_SHOP, "mref": f"{link.code}:forged"})

    assert page.status_code == 200
    assert not MerchantReferral.objects.exists()


def test_same_owner_found_at_install_is_refused(link, fake_shopify, advocate):
    shopify_connect(fake_shopify, advocate)
    fake_shopify.shop(advocate.shop_domain).data["owner_email"] = "Founder@Example.com"
    fake_shopify.shop(NEW_SHOP).data["owner_email"] = "founder@example.com "

    page = Client().get(
        "/app/", {"id_token": session_token(NEW_SHOP), "shop": NEW_SHOP, "mref": referral_token(link.code)}
    )

    assert page.status_code == 200
    assert not MerchantReferral.objects.exists()
    assert AuditLog.objects.filter(action="merchant_referral_refused", metadata__reason="same_owner").count() == 1


# --- the beat: completion and expiry -----------------------------------------------------------


@pytest.fixture
def pending(link, referred, fake_shopify, advocate):
    shopify_connect(fake_shopify, advocate)
    shopify_connect(fake_shopify, referred)
    return merchant_referral_attribute(referred=referred, code=link.code)


def test_a_referral_completes_after_the_qualifying_period(pending, owner):
    young = merchant_referrals_advance()
    assert young == {"completed": 0, "expired": 0, "waiting": 0}

    _age(pending, 31)
    report = merchant_referrals_advance()

    pending.refresh_from_db()
    assert report["completed"] == 1 and pending.status == ReferralStatus.COMPLETED
    reward = MerchantReferralReward.objects.get(referral=pending)
    assert (reward.merchant_id, reward.role, reward.reward_id, str(reward.amount)) == (
        pending.merchant_id,
        "advocate",
        "1_month_free",
        "29.00",
    )
    assert AuditLog.objects.filter(action="merchant_referral_completed", metadata__reward="1_month_free").count() == 1
    assert (
        Notification.objects.filter(type="merchant_referral_status", idempotency_key__contains=":completed").count()
        == 1
    )
    # Run again: nothing changes, no second reward.
    assert merchant_referrals_advance()["completed"] == 0
    assert MerchantReferralReward.objects.count() == 1


def test_the_welcome_reward_is_granted_when_configured(pending, settings):
    settings.MERCHANT_REFERRALS_WELCOME_REWARD = "welcome_credit"
    settings.MERCHANT_REFERRALS_WELCOME_REWARD_AMOUNT = "10.00"
    _age(pending, 31)

    merchant_referrals_advance()

    welcome = MerchantReferralReward.objects.get(role="referred")
    assert welcome.merchant_id == pending.referred_merchant_id and str(welcome.amount) == "10.00"


def test_an_uninstall_expires_the_referral(pending):
    Merchant.objects.filter(pk=pending.referred_merchant_id).update(is_installed=False)

    report = merchant_referrals_advance()

    pending.refresh_from_db()
    assert report["expired"] == 1 and (pending.status, pending.expired_reason) == ("expired", "uninstalled")
    assert not MerchantReferralReward.objects.exists()
    assert AuditLog.objects.filter(action="merchant_referral_expired", metadata__reason="uninstalled").count() == 1


def test_a_reinstall_breaks_the_run(pending):
    _age(pending, 31)
    Merchant.objects.filter(pk=pending.referred_merchant_id).update(installed_at=timezone.now() - timedelta(days=2))

    assert merchant_referrals_advance() == {"completed": 0, "expired": 1, "waiting": 0}
    pending.refresh_from_db()
    assert pending.expired_reason == "uninstalled"


def test_same_owner_discovered_at_completion_expires_the_referral(pending, fake_shopify, advocate, referred):
    MerchantReferralOwner.objects.all().delete()
    fake_shopify.shop(advocate.shop_domain).data["owner_email"] = "one@example.com"
    fake_shopify.shop(referred.shop_domain).data["owner_email"] = "ONE@example.com"
    _age(pending, 31)

    report = merchant_referrals_advance()

    pending.refresh_from_db()
    assert report["expired"] == 1 and pending.expired_reason == "same_owner"
    assert not MerchantReferralReward.objects.exists()


def test_completion_waits_while_shopify_cannot_say_who_owns_the_shops(pending, fake_shopify):
    MerchantReferralOwner.objects.all().delete()
    _age(pending, 31)
    fake_shopify.fail_next(20, status=503)

    report = merchant_referrals_advance()

    pending.refresh_from_db()
    assert report["waiting"] == 1 and pending.status == ReferralStatus.PENDING

    _age(pending, 91)
    fake_shopify.fail_next(20, status=503)
    assert merchant_referrals_advance()["expired"] == 1
    pending.refresh_from_db()
    assert (pending.status, pending.expired_reason) == (ReferralStatus.EXPIRED, "window")
