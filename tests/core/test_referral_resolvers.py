"""The referral resolver registry: a shop may accept codes another app vouches for (a store
group's shared codes), only when it issued no link for the code itself."""

import pytest

from apps.core.errors import NotFound
from apps.core.services import (
    SelfReferralRefused,
    referral_link_get_or_create,
    referral_link_resolve,
    referral_resolver_register,
)
from apps.core.services import referrals as referrals_module
from tests.factories import CustomerFactory


@pytest.fixture
def resolvers(monkeypatch):
    registry = {}
    monkeypatch.setattr(referrals_module, "_referral_resolvers", registry)
    return registry


def test_a_registered_resolver_is_asked_only_for_codes_the_shop_did_not_issue(merchant, other_merchant, resolvers):
    own = referral_link_get_or_create(merchant=merchant, customer=CustomerFactory(merchant=merchant))
    foreign = referral_link_get_or_create(merchant=other_merchant["merchant"], customer=other_merchant["customers"][0])
    calls = []

    def resolver(*, merchant, code, customer):
        calls.append(code)
        return foreign if code == foreign.code else None

    with pytest.raises(NotFound):
        referral_link_resolve(merchant=merchant, code=foreign.code)  # nothing registered yet
    referral_resolver_register("test", resolver)

    assert referral_link_resolve(merchant=merchant, code=own.code) == own
    assert referral_link_resolve(merchant=merchant, code=foreign.code) == foreign
    with pytest.raises(NotFound):
        referral_link_resolve(merchant=merchant, code="NOSUCHCODE")
    assert calls == [foreign.code, "NOSUCHCODE"]


def test_a_resolver_may_refuse_a_self_referral(merchant, resolvers):
    def resolver(**kwargs):
        raise SelfReferralRefused()

    referral_resolver_register("test", resolver)
    with pytest.raises(SelfReferralRefused):
        referral_link_resolve(merchant=merchant, code="ELSEWHERE2", customer=CustomerFactory(merchant=merchant))


def test_registering_again_under_a_name_replaces_the_resolver(merchant, resolvers):
    referral_resolver_register("test", lambda **kwargs: None)
    referral_resolver_register("test", lambda **kwargs: None)
    assert len(resolvers) == 1
