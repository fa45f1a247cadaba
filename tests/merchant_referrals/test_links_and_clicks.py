"""Referral links (CSPRNG codes, one per advocate) and clicks through /r/<code>."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import AuditLog
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from apps.merchant_referrals.models import MerchantReferralClick, MerchantReferralDaily, MerchantReferralLink
from apps.merchant_referrals.services import (
    link_get_by_code,
    merchant_referral_click_record,
    merchant_referral_link_create,
    referral_token_code,
)

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"


def test_a_link_has_a_csprng_code_and_is_created_once(advocate, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        link, created = merchant_referral_link_create(merchant=advocate, actor=owner)
    again, created_again = merchant_referral_link_create(merchant=advocate, actor=owner)

    assert created and not created_again and again.pk == link.pk
    assert re.fullmatch(r"MER[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}", link.code)
    audit = AuditLog.objects.get(merchant=advocate, action="merchant_referral_created")
    assert audit.metadata == {"referral_code": link.code, "reward": "1_month_free"}
    entries = get_redis().xrange(stream_name(advocate.pk, f"merchant_referral:{link.code}"))
    assert len(entries) == 1


def test_a_taken_code_is_drawn_again(advocate, make_shop):
    other = make_shop("delta-decor.myshopify.com")
    merchant_referral_link_create(merchant=other, generate_code=lambda: "MERTAKEN2345")
    draws = iter(["MERTAKEN2345", "MERFRESH2345"])

    link, _created = merchant_referral_link_create(merchant=advocate, generate_code=lambda: next(draws))

    assert link.code == "MERFRESH2345"
    assert MerchantReferralLink.objects.filter(code="MERTAKEN2345").count() == 1


def test_codes_differ_between_advocates(advocate, make_shop):
    codes = {merchant_referral_link_create(merchant=advocate)[0].code}
    for index in range(5):
        codes.add(merchant_referral_link_create(merchant=make_shop(f"shop-x{index}.myshopify.com"))[0].code)
    assert len(codes) == 6


def test_a_visitor_counts_once_a_day_and_bots_never(link):
    now = timezone.now()
    assert merchant_referral_click_record(link=link, address="203.0.113.7", user_agent=BROWSER, now=now)
    assert not merchant_referral_click_record(link=link, address="203.0.113.7", user_agent=BROWSER, now=now)
    assert merchant_referral_click_record(link=link, address="203.0.113.8", user_agent=BROWSER, now=now)
    assert not merchant_referral_click_record(link=link, address="203.0.113.9", user_agent="Googlebot/2.1", now=now)
    assert not merchant_referral_click_record(link=link, address="203.0.113.9", user_agent="", now=now)
    assert merchant_referral_click_record(
        link=link, address="203.0.113.7", user_agent=BROWSER, now=now + timedelta(days=1)
    )

    days = dict(MerchantReferralDaily.objects.filter(merchant=link.merchant).values_list("day", "clicks"))
    assert days == {now.date(): 2, (now + timedelta(days=1)).date(): 1}
    stored = MerchantReferralClick.objects.filter(link=link)
    assert stored.count() == 3
    assert not stored.filter(visitor_hash__contains="203.0.113").exists()


@pytest.mark.django_db
def test_malformed_and_unknown_codes_find_nothing(link):
    assert link_get_by_code("nope") is None
    assert link_get_by_code("MER' OR 1=1") is None
    assert link_get_by_code("MERAAAAAAAAAA") is None
    assert link_get_by_code(link.code.lower()).pk == link.pk


def test_redirect_counts_the_click_and_keeps_the_code(client, link, settings):
    settings.MERCHANT_REFERRALS_LISTING_URL = "https://apps.shopify.com/loyalnest?utm_source=referral"

    response = client.get(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="198.51.100.4")

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("https://apps.shopify.com/loyalnest?utm_source=referral&mref=")
    token = location.split("mref=")[1]
    from urllib.parse import unquote

    assert referral_token_code(unquote(token)) == link.code
    cookie = response.cookies["loyalnest_mref"]
    assert referral_token_code(cookie.value) == link.code
    assert cookie["httponly"] and int(cookie["max-age"]) == 30 * 24 * 3600
    assert MerchantReferralClick.objects.filter(link=link).count() == 1


def test_unknown_codes_redirect_without_recording(client, link, settings):
    response = client.get("/r/MERUNKNOWN234", HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 302
    assert response["Location"] == settings.MERCHANT_REFERRALS_LISTING_URL
    assert "loyalnest_mref" not in response.cookies
    assert not MerchantReferralClick.objects.exists()


def test_redirect_lookups_are_rate_limited(client, link, settings):
    settings.MERCHANT_REFERRALS_REDIRECT_RATE = "3/60"
    answers = [
        client.get(f"/r/MERGUESS{index:04d}", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="198.51.100.9").status_code
        for index in range(5)
    ]
    assert answers == [302, 302, 302, 429, 429]
    # Another address is not affected.
    assert client.get(f"/r/{link.code}", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="198.51.100.10").status_code == 302


def test_a_token_older_than_the_window_is_ignored(link, settings):
    from django.core import signing

    from apps.merchant_referrals.services import TOKEN_SALT

    old = signing.TimestampSigner(salt=TOKEN_SALT)
    token = old.sign(link.code)
    settings.MERCHANT_REFERRALS_ATTRIBUTION_DAYS = 0
    assert referral_token_code(token + "x") is None
    import time

    time.sleep(1.1)
    assert referral_token_code(token) is None
