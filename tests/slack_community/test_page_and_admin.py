"""The merchant's /app/community/ page (join help, members, beta switches, analytics) and the
staff admin of community members (filters, analytics)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.slack_community.models import SlackCommunityMember
from apps.slack_community.selectors import slack_community_analytics
from tests.factories import MerchantFactory
from tests.shopify_helpers import auth_header, session_token


@pytest.fixture
def client():
    return Client()


def open_page(client, staff, **params):
    params["id_token"] = session_token(staff.merchant.shop_domain, user_id=staff.shopify_user_id)
    return client.get("/app/community/", params)


@pytest.fixture
def community(merchant, other_merchant):
    """Four installed stores: alpha (active, rfm_advanced), beta-gadgets (invited), two outside."""
    SlackCommunityMember.objects.create(
        merchant=merchant, slack_user_id="U0ALPHA1234", status="active", beta_features={"rfm_advanced": True}
    )
    SlackCommunityMember.objects.create(merchant=other_merchant["merchant"], slack_user_id="U0BETA56789")
    MerchantFactory.create_batch(2)
    MerchantFactory(is_installed=False)  # uninstalled stores do not count


def test_analytics_participation_and_beta_adoption(community):
    figures = slack_community_analytics()

    assert figures["installed_merchants"] == 4 and figures["community_merchants"] == 2
    assert figures["active_merchants"] == 1 and figures["participation_rate"] == 0.25
    assert figures["beta_adopters"] == 1 and figures["beta_adoption_rate"] == 0.5
    assert figures["beta_adoption_by_feature"]["rfm_advanced"] == 1
    assert figures["beta_adoption_by_feature"]["streaks"] == 0
    assert figures["status_counts"] == {"active": 1, "invited": 1, "inactive": 0}


def test_page_shows_join_help_members_beta_switches_and_analytics(client, owner, merchant, community):
    response = open_page(client, owner)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="join-form"' in html and "Copy member ID" in html
    assert "U0ALPHA1234" in html and "U0BETA56789" not in html  # the other store's member never shows
    assert 'data-feature="rfm_advanced" checked' in html and 'data-feature="streaks">' in html
    assert "25.0%" in html and "50.0%" in html
    assert "frame-ancestors https://alpha-pets.myshopify.com" in response["Content-Security-Policy"]


def test_page_before_joining_disables_the_switches(client, owner, merchant, other_merchant):
    SlackCommunityMember.objects.create(merchant=other_merchant["merchant"], slack_user_id="U0BETA56789")

    html = open_page(client, owner).content.decode()

    assert "Nobody from your store has joined yet." in html
    assert 'data-feature="streaks" disabled' in html


def test_page_is_right_to_left_in_persian(client, owner):
    html = open_page(client, owner, locale="fa").content.decode()

    assert 'dir="rtl"' in html


def test_page_is_denied_without_the_community_scope(client, support, community):
    response = open_page(client, support)

    assert response.status_code == 403
    assert "U0ALPHA1234" not in response.content.decode()


@pytest.fixture
def staff_client(db):
    user = get_user_model().objects.create_superuser("staff", "staff@loyalnest.test", "pw-for-tests-only")
    admin_client = Client()
    admin_client.force_login(user)
    return admin_client


def test_admin_lists_members_with_filters_and_the_community_analytics(staff_client, community):
    url = "/admin/slack_community/slackcommunitymember/"

    everyone = staff_client.get(url)
    active = staff_client.get(url, {"status": "active"})
    beta = staff_client.get(url, {"beta_feature": "rfm_advanced"})

    assert everyone.status_code == 200
    html = everyone.content.decode()
    assert "U0ALPHA1234" in html and "U0BETA56789" in html
    assert 'data-testid="community-analytics"' in html and "Participation: 0.25" in html
    assert "U0BETA56789" not in active.content.decode() and "U0ALPHA1234" in active.content.decode()
    assert "U0BETA56789" not in beta.content.decode() and "U0ALPHA1234" in beta.content.decode()


def test_a_beta_switch_round_trips_through_the_api_the_page_uses(client, api, owner, merchant, other_merchant):
    """The switch posts to /v1/api/slack/beta (the page's script); reloading shows the new state,
    for this store only."""
    SlackCommunityMember.objects.create(merchant=merchant, slack_user_id="U0ALPHA1234", status="active")
    SlackCommunityMember.objects.create(merchant=other_merchant["merchant"], slack_user_id="U0BETA56789")
    assert 'data-feature="streaks">' in open_page(client, owner).content.decode()

    def switch(enabled):
        body = {"feature": "streaks", "enabled": enabled, "locale": "en"}
        return api.post("/v1/api/slack/beta", data=body, format="json", **auth_header(owner))

    assert switch(True).json()["beta_features"] == {"streaks": True}
    html = open_page(client, owner).content.decode()
    assert 'data-feature="streaks" checked' in html and 'data-feature="rfm_advanced">' in html
    theirs = open_page(client, other_merchant["owner"]).content.decode()
    assert 'data-feature="streaks" checked' not in theirs

    assert switch(False).json()["beta_features"] == {}
    assert 'data-feature="streaks">' in open_page(client, owner).content.decode()
