"""POST /v1/api/merchant-referrals/create and GET /v1/api/merchant-referrals/analytics."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import AuditLog
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from apps.merchant_referrals.models import MerchantReferralDaily, MerchantReferralLink
from apps.merchant_referrals.services import merchant_referral_link_create
from tests.factories import StaffMemberFactory
from tests.shopify_helpers import auth_header

CREATE = "/v1/api/merchant-referrals/create"
ANALYTICS = "/v1/api/merchant-referrals/analytics"


@pytest.fixture
def foreign(other_merchant):
    """The second merchant, with its own link and traffic that must never show."""
    shop = other_merchant["merchant"]
    merchant_referral_link_create(merchant=shop)
    MerchantReferralDaily.objects.create(merchant=shop, day=timezone.now().date(), clicks=999, conversions=77)
    return other_merchant


def test_create_returns_the_seeds_shape(api, advocate, owner, foreign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            CREATE, {"advocate_merchant_id": advocate.pk, "locale": "en"}, format="json", **auth_header(owner)
        )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    link = MerchantReferralLink.objects.get(merchant=advocate)
    assert body["referral_code"] == link.code
    assert body["referral_url"] == f"http://127.0.0.1:8000/r/{link.code}"
    assert body["referral_code"] != MerchantReferralLink.objects.get(merchant=foreign["merchant"]).code
    assert AuditLog.objects.filter(merchant=advocate, action="merchant_referral_created", staff_user=None).count() == 1
    assert get_redis().xlen(stream_name(advocate.pk, f"merchant_referral:{link.code}")) == 1


def test_create_twice_returns_the_same_link(api, advocate, owner, foreign):
    first = api.post(CREATE, {"advocate_merchant_id": advocate.pk}, format="json", **auth_header(owner)).json()
    second = api.post(CREATE, {"advocate_merchant_id": advocate.pk}, format="json", **auth_header(owner))

    assert second.status_code == 200
    assert second.json()["referral_code"] == first["referral_code"]
    assert MerchantReferralLink.objects.filter(merchant=advocate).count() == 1


def test_another_merchants_id_is_not_found_and_creates_nothing(api, advocate, owner, foreign):
    response = api.post(
        CREATE, {"advocate_merchant_id": foreign["merchant"].pk, "locale": "de"}, format="json", **auth_header(owner)
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not MerchantReferralLink.objects.filter(merchant=advocate).exists()
    assert MerchantReferralLink.objects.filter(merchant=foreign["merchant"]).count() == 1


def test_create_needs_admin_referrals(api, advocate, foreign):
    support = StaffMemberFactory(merchant=advocate, shopify_user_id="90077", role="support")

    response = api.post(CREATE, {"advocate_merchant_id": advocate.pk}, format="json", **auth_header(support))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not MerchantReferralLink.objects.filter(merchant=advocate).exists()
    assert not AuditLog.objects.filter(merchant=advocate, action="merchant_referral_created").exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "advocate_merchant_id"), ({"advocate_merchant_id": "x", "bogus": 1}, "bogus")],
)
def test_bad_create_input_is_400_in_the_requested_locale(api, advocate, owner, foreign, payload, field):
    response = api.post(CREATE, {**payload, "locale": "fr"}, format="json", **auth_header(owner))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]
    assert error["message"] != "Some fields are missing or invalid."  # French, not English
    assert not MerchantReferralLink.objects.filter(merchant=advocate).exists()


def test_analytics_in_the_seeds_shape_with_a_daily_series(api, advocate, owner, foreign):
    today = timezone.now().date()
    MerchantReferralDaily.objects.create(merchant=advocate, day=today - timedelta(days=2), clicks=40, conversions=2)
    MerchantReferralDaily.objects.create(merchant=advocate, day=today, clicks=10, conversions=1)
    MerchantReferralDaily.objects.create(merchant=advocate, day=today - timedelta(days=40), clicks=500, conversions=50)
    query = {
        "merchant_id": advocate.pk,
        "date_range[start]": (today - timedelta(days=6)).isoformat(),
        "date_range[end]": today.isoformat(),
    }

    response = api.get(ANALYTICS, query, **auth_header(owner))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    assert body["analytics"] == {"clicks": 50, "conversions": 3, "ctr": 0.06}
    assert len(body["series"]) == 7
    assert body["series"][-1] == {"date": today.isoformat(), "clicks": 10, "conversions": 1}
    assert body["series"][0]["clicks"] == 0
    audit = AuditLog.objects.get(merchant=advocate, action="merchant_referral_analytics_viewed")
    assert audit.metadata["start"] == query["date_range[start]"]
    assert not AuditLog.objects.filter(
        merchant=foreign["merchant"], action="merchant_referral_analytics_viewed"
    ).exists()


def test_analytics_accepts_a_json_date_range_and_defaults_to_30_days(api, advocate, owner, foreign):
    today = timezone.now().date()
    body = api.get(ANALYTICS, {"date_range": f'{{"start": "{today}", "end": "{today}"}}'}, **auth_header(owner)).json()
    assert body["analytics"] == {"clicks": 0, "conversions": 0, "ctr": 0.0}
    assert len(api.get(ANALYTICS, **auth_header(owner)).json()["series"]) == 30


@pytest.mark.parametrize(
    "query",
    [
        {"date_range[start]": "2026-11-10", "date_range[end]": "2026-11-01"},  # reversed
        {"date_range[start]": "2026-13-01", "date_range[end]": "2026-11-01"},  # not a date
        {"date_range[start]": "2024-01-01", "date_range[end]": "2026-01-01"},  # too long
        {"date_range[start]": "2026-11-01"},  # half a range
        {"date_range": "{not json"},
    ],
)
def test_bad_ranges_are_400_localized(api, advocate, owner, foreign, query):
    response = api.get(ANALYTICS, {**query, "locale": "de"}, **auth_header(owner))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert response["Content-Language"] == "de" or error["message"] != "Some fields are missing or invalid."
    assert not AuditLog.objects.filter(action="merchant_referral_analytics_viewed").exists()


def test_analytics_of_another_merchant_is_not_found(api, advocate, owner, foreign):
    response = api.get(ANALYTICS, {"merchant_id": foreign["merchant"].pk}, **auth_header(owner))

    assert response.status_code == 404
    assert "999" not in response.content.decode()


def test_analytics_needs_admin_analytics(api, advocate, foreign):
    support = StaffMemberFactory(merchant=advocate, shopify_user_id="90078", role="support")

    response = api.get(ANALYTICS, **auth_header(support))

    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="merchant_referral_analytics_viewed").exists()
