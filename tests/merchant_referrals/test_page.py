"""The embedded page /app/merchant-referrals/: the link with a copy button, the trend (chart
with a table that works without the CDN) and the referred stores — one shop's data only."""

from django.utils import timezone

from apps.merchant_referrals.models import MerchantReferralDaily
from apps.merchant_referrals.services import merchant_referral_attribute, merchant_referral_link_create
from tests.factories import StaffMemberFactory
from tests.shopify_helpers import session_token


def _open(client, staff, **params):
    params["id_token"] = session_token(staff.merchant.shop_domain, user_id=staff.shopify_user_id)
    return client.get("/app/merchant-referrals/", params)


def test_the_page_shows_link_trend_table_and_referred_stores(client, owner, link, referred, other_merchant, make_shop):
    merchant_referral_attribute(referred=referred, code=link.code)
    MerchantReferralDaily.objects.filter(merchant=owner.merchant).update(clicks=12)
    foreign_link, _created = merchant_referral_link_create(merchant=other_merchant["merchant"])
    merchant_referral_attribute(referred=make_shop("lambda-lamps.myshopify.com"), code=foreign_link.code)

    response = _open(client, owner)

    assert response.status_code == 200
    assert "frame-ancestors https://alpha-pets.myshopify.com" in response["Content-Security-Policy"]
    html = response.content.decode()
    assert f'value="http://127.0.0.1:8000/r/{link.code}"' in html and 'id="copy-link"' in html
    assert 'data-chart="referrals"' in html and "<table>" in html
    assert f'<th scope="row">{timezone.now().date().isoformat()}</th><td>12</td><td>1</td>' in html
    assert "gamma-goods.myshopify.com" in html and "Pending" in html
    assert foreign_link.code not in html and "lambda-lamps" not in html


def test_the_page_speaks_the_merchants_language_right_to_left(client, owner, link):
    response = _open(client, owner, locale="ar")

    assert response.status_code == 200
    assert 'dir="rtl"' in response.content.decode()
    assert response["Content-Language"] == "ar"


def test_without_a_link_the_owner_gets_a_create_button(client, owner):
    html = _open(client, owner).content.decode()
    assert 'id="create-link"' in html and "/v1/api/merchant-referrals/create" in html


def test_staff_without_either_scope_are_refused(client, merchant, link):
    support = StaffMemberFactory(merchant=merchant, shopify_user_id="90099", role="support")

    response = _open(client, support)

    assert response.status_code == 403
    assert link.code not in response.content.decode()


def test_the_dashboard_links_the_page(client, owner):
    html = client.get(
        "/app/", {"id_token": session_token(owner.merchant.shop_domain, user_id="90001")}
    ).content.decode()
    assert 'href="/app/merchant-referrals/' in html
