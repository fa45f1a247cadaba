"""Storefront endpoints under the app proxy (scope customer:frontend): the shopper's badges,
streak and team rank, joining a team; the widgets' gamification contribution; isolation."""

import json
from datetime import UTC, datetime

from django.utils import timezone

from apps.gamification.models import Achievement, Streak, TeamMembership
from apps.gamification.selectors import current_cycle
from tests.factories import CustomerFactory
from tests.shopify_helpers import proxy_signed_query
from tests.slack_community.beta import beta_on

from .conftest import make_badge, make_team

SHOPPER_ID = "6001"


def proxy_url(merchant, path, customer_id=SHOPPER_ID, **params):
    return f"/proxy/v1/api/{path}?{proxy_signed_query(merchant.shop_domain, customer_id, **params)}"


def _shopper(merchant):
    return CustomerFactory(merchant=merchant, shopify_customer_id=SHOPPER_ID, locale="he")


def _foreign_shopper(other_merchant):
    """The other shop's customer with the same Shopify id, holding a badge, a streak and a team."""
    other = other_merchant["merchant"]
    twin = CustomerFactory(merchant=other, shopify_customer_id=SHOPPER_ID)
    badge = make_badge(other, {"type": "first_purchase"}, name={"en": "Foreign badge"})
    Achievement.objects.create(merchant=other, customer=twin, badge_definition=badge, badge=badge.name)
    Streak.objects.create(
        merchant=other,
        customer=twin,
        current_count=9,
        longest_count=9,
        last_period_date=timezone.now().date().replace(day=1),
    )
    team = make_team(other, current_cycle(merchant=other), "Foreign team")
    TeamMembership.objects.create(merchant=other, customer=twin, team=team, cycle=team.cycle)
    return twin


def test_the_shopper_sees_their_badges_in_their_language_only(api, merchant, other_merchant):
    _foreign_shopper(other_merchant)
    shopper = _shopper(merchant)
    badge = make_badge(merchant, {"type": "first_purchase"}, name={"en": "First!", "he": "ראשון!"}, icon="rocket")
    Achievement.objects.create(merchant=merchant, customer=shopper, badge_definition=badge, badge=badge.name)

    body = api.get(proxy_url(merchant, "gamification/badges", locale="he")).json()

    assert body["status"] == "ok"
    assert [(b["name"], b["icon"]) for b in body["badges"]] == [("ראשון!", "rocket")]
    assert "Foreign" not in json.dumps(body)


def test_the_streak_is_read_lazily_as_broken_after_a_missed_period(api, merchant, other_merchant):
    _foreign_shopper(other_merchant)
    shopper = _shopper(merchant)
    Streak.objects.create(
        merchant=merchant, customer=shopper, current_count=4, longest_count=6, last_period_date="2025-01-01"
    )

    body = api.get(proxy_url(merchant, "gamification/streak")).json()

    assert body["streak"]["streak_count"] == 0 and body["streak"]["longest_count"] == 6
    assert body["streak"]["period"] == "month"


def test_joining_a_team_and_reading_its_rank(api, merchant, other_merchant):
    beta_on(merchant, "team_leaderboards")  # shopper-facing teams are the beta feature
    _foreign_shopper(other_merchant)
    shopper = _shopper(merchant)
    cycle = current_cycle(merchant=merchant)
    red, blue = make_team(merchant, cycle, "Red"), make_team(merchant, cycle, "Blue")
    closed = make_team(merchant, cycle, "Staff only", is_open=False)

    joined = api.post(proxy_url(merchant, "gamification/teams/join"), data={"team_id": blue.pk}, format="json")
    again = api.post(proxy_url(merchant, "gamification/teams/join"), data={"team_id": red.pk}, format="json")
    shut = api.post(proxy_url(merchant, "gamification/teams/join"), data={"team_id": closed.pk}, format="json")

    assert joined.status_code == 200 and joined.json()["team_id"] == blue.pk
    assert again.status_code == 409 and again.json()["error"]["code"] == "team_already_joined"
    assert shut.status_code == 409
    assert list(TeamMembership.objects.filter(merchant=merchant).values_list("customer_id", "team_id")) == [
        (shopper.pk, blue.pk)
    ]
    body = api.get(proxy_url(merchant, "gamification/team-rank")).json()
    assert body["team"]["team_id"] == blue.pk and body["team"]["rank"] in (1, 2, 3)
    assert {row["team_id"] for row in body["ranking"]} == {red.pk, blue.pk, closed.pk}
    assert {team["team_id"] for team in body["teams"]} == {red.pk, blue.pk}  # open ones to join
    assert body["chart"]["type"] == "bar"
    assert "Foreign" not in json.dumps(body)


def test_a_foreign_team_cannot_be_joined(api, merchant, other_merchant):
    _foreign_shopper(other_merchant)
    _shopper(merchant)
    foreign_team = TeamMembership.objects.get(merchant=other_merchant["merchant"]).team
    response = api.post(
        proxy_url(merchant, "gamification/teams/join"), data={"team_id": foreign_team.pk}, format="json"
    )
    assert response.status_code == 404
    assert not TeamMembership.objects.filter(merchant=merchant).exists()
    assert TeamMembership.objects.filter(team=foreign_team).count() == 1


def test_anonymous_visitors_are_asked_to_log_in_and_join_nothing(api, merchant):
    team = make_team(merchant, current_cycle(merchant=merchant), "Red")
    for response in (
        api.get(proxy_url(merchant, "gamification/badges", customer_id=None)),
        api.post(
            proxy_url(merchant, "gamification/teams/join", customer_id=None), data={"team_id": team.pk}, format="json"
        ),
    ):
        assert response.status_code == 401 and response.json()["error"]["code"] == "login_required"
    assert not TeamMembership.objects.exists()


def test_the_widgets_answer_carries_badges_streak_and_team(api, merchant, other_merchant):
    _foreign_shopper(other_merchant)
    shopper = _shopper(merchant)
    badge = make_badge(merchant, {"type": "first_purchase"}, name={"en": "First!", "ar": "الأول!"})
    Achievement.objects.create(merchant=merchant, customer=shopper, badge_definition=badge, badge=badge.name)
    Streak.objects.create(
        merchant=merchant,
        customer=shopper,
        current_count=2,
        longest_count=2,
        last_period_date=datetime.now(UTC).date().replace(day=1),
    )

    body = api.get(proxy_url(merchant, "widgets", locale="ar")).json()

    mine = body["contributions"]["gamification"]
    assert mine["dir"] == "rtl"
    assert [b["name"] for b in mine["badges"]] == ["الأول!"]
    assert mine["streak"]["streak_count"] == 2 and mine["team"] is None
    assert "Foreign" not in json.dumps(body)
