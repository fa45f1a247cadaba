"""The Admin Module: staff find referrals by code or shop and complete, expire or grant a reward
by hand — each action permission-checked and audited with the staff user."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.core.models import AuditLog
from apps.merchant_referrals.models import MerchantReferral, MerchantReferralReward, ReferralStatus
from apps.merchant_referrals.services import merchant_referral_attribute, merchant_referral_link_create

CHANGELIST = reverse("admin:merchant_referrals_merchantreferral_changelist")


@pytest.fixture
def referrals(link, referred, make_shop):
    """Two pending referrals of the advocate and one of another advocate."""
    second = make_shop("theta-threads.myshopify.com")
    other_link, _created = merchant_referral_link_create(merchant=make_shop("iota-ink.myshopify.com"))
    return {
        "first": merchant_referral_attribute(referred=referred, code=link.code),
        "second": merchant_referral_attribute(referred=second, code=link.code),
        "foreign": merchant_referral_attribute(referred=make_shop("kappa-kites.myshopify.com"), code=other_link.code),
    }


def _staff(django_user_model, name, codenames):
    user = django_user_model.objects.create_user(name, f"{name}@loyalnest.test", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="merchant_referrals", codename__in=codenames)
    )
    return user


@pytest.fixture
def operator(django_user_model):
    return _staff(
        django_user_model,
        "ops",
        [
            "view_merchantreferral",
            "change_merchantreferral",
            "add_merchantreferralreward",
            "view_merchantreferralreward",
        ],
    )


def test_search_by_code_or_shop(client, operator, referrals):
    client.force_login(operator)
    first, foreign = referrals["first"], referrals["foreign"]

    by_code = client.get(CHANGELIST, {"q": foreign.code.lower()}).content.decode()
    by_shop = client.get(CHANGELIST, {"q": "GAMMA-GOODS.myshopify.com"}).content.decode()

    assert foreign.referred_merchant.shop_domain in by_code and first.referred_merchant.shop_domain not in by_code
    assert first.referred_merchant.shop_domain in by_shop and "theta-threads" not in by_shop


def test_complete_by_hand_grants_the_reward_and_audits_the_staff_user(client, operator, referrals):
    client.force_login(operator)
    first = referrals["first"]

    client.post(CHANGELIST, {"action": "complete", "_selected_action": [first.pk]}, follow=True)

    assert MerchantReferral.objects.get(pk=first.pk).status == ReferralStatus.COMPLETED
    assert MerchantReferral.objects.get(pk=referrals["second"].pk).status == ReferralStatus.PENDING
    assert MerchantReferralReward.objects.filter(referral_id=first.pk).count() == 1
    audit = AuditLog.objects.get(action="merchant_referral_completed")
    assert (audit.staff_user, audit.target_id) == (operator, first.pk)
    assert AuditLog.objects.get(action="merchant_referral_reward_granted").staff_user == operator


def test_expire_by_hand(client, operator, referrals):
    client.force_login(operator)

    client.post(CHANGELIST, {"action": "expire", "_selected_action": [referrals["second"].pk]}, follow=True)

    second = MerchantReferral.objects.get(pk=referrals["second"].pk)
    assert (second.status, second.expired_reason) == (ReferralStatus.EXPIRED, "staff")
    assert AuditLog.objects.get(action="merchant_referral_expired").staff_user == operator


def test_grant_reward_by_hand_is_idempotent(client, operator, referrals):
    client.force_login(operator)
    foreign = referrals["foreign"]

    for _ in range(2):
        client.post(CHANGELIST, {"action": "grant_reward", "_selected_action": [foreign.pk]}, follow=True)

    assert MerchantReferralReward.objects.filter(referral_id=foreign.pk).count() == 1
    assert AuditLog.objects.filter(action="merchant_referral_reward_granted", staff_user=operator).count() == 1


@pytest.mark.parametrize("action", ["complete", "expire", "grant_reward"])
def test_viewers_cannot_act(client, django_user_model, referrals, action):
    viewer = _staff(django_user_model, "viewer", ["view_merchantreferral"])
    client.force_login(viewer)
    first = referrals["first"]

    response = client.post(CHANGELIST, {"action": action, "_selected_action": [first.pk]})

    assert response.status_code in (200, 302, 403)
    assert MerchantReferral.objects.get(pk=first.pk).status == ReferralStatus.PENDING
    assert not MerchantReferralReward.objects.exists()
    assert not AuditLog.objects.filter(staff_user=viewer).exists()
