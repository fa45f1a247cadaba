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


def test_a_widgets_request_is_one_query_whatever_the_shop_configured(api, merchant, django_assert_max_num_queries):
    """Speed (issue 9): once the web process knows the shop (its content, beta flags and whether
    it has badges and teams), a shopper's widget answer is one query — the shopper's row with the
    streak, team membership and badges — with badges, a streak and a storefront team; and says
    exactly what the per-piece selectors say."""
    from apps.core.tenancy import merchant_scope
    from apps.gamification.leaderboard import leaderboard_rebuild
    from apps.gamification.models import TeamLeaderboard
    from apps.gamification.selectors import customer_badge_list, streak_get, team_rank_for_customer, team_ranking

    beta_on(merchant, "team_leaderboards")
    shopper = _shopper(merchant)
    cycle = current_cycle(merchant=merchant)
    teams = [make_team(merchant, cycle, name=f"Team {n}") for n in range(3)]
    TeamMembership.objects.create(merchant=merchant, customer=shopper, team=teams[1], cycle=cycle)
    for score, team in zip((5, 9, 2), teams, strict=True):
        TeamLeaderboard.objects.filter(merchant=merchant, team_id=team.pk, cycle=cycle).update(score=score)
    leaderboard_rebuild(merchant_id=merchant.pk, cycle=cycle)
    for n in range(14):
        badge = make_badge(merchant, {"type": "first_purchase"}, name={"en": f"B{n}", "he": f"ב{n}"})
        Achievement.objects.create(merchant=merchant, customer=shopper, badge_definition=badge, badge=badge.name)
    Streak.objects.create(
        merchant=merchant, customer=shopper, current_count=3, longest_count=4,
        last_period_date=datetime.now(UTC).date().replace(day=1),
    )  # fmt: skip
    api.get(proxy_url(merchant, "widgets", customer_id="6002", locale="he"))  # the process learns the shop

    with django_assert_max_num_queries(1):
        body = api.get(proxy_url(merchant, "widgets", locale="he")).json()

    mine = body["contributions"]["gamification"]
    with merchant_scope(merchant):
        assert mine["badges"] == customer_badge_list(merchant=merchant, customer=shopper, locale="he")[:12]
        assert mine["streak"] == streak_get(merchant=merchant, customer=shopper)
        assert mine["team"] == team_rank_for_customer(merchant=merchant, customer=shopper, cycle=cycle, locale="he")
        assert mine["teams"] == team_ranking(merchant=merchant, cycle=cycle, limit=5, locale="he")
    assert mine["team"]["rank"] == 1 and [t["score"] for t in mine["teams"]] == [9, 5, 2]
    assert len(mine["badges"]) == 12


def test_a_badge_created_after_the_widget_was_shown_appears_at_once(api, merchant, other_merchant):
    """The process's note that a shop has no badges (so the widget skips reading them) is
    dropped when the shop saves its first badge."""
    _foreign_shopper(other_merchant)
    shopper = _shopper(merchant)
    before = api.get(proxy_url(merchant, "widgets", locale="en")).json()["contributions"]["gamification"]

    badge = make_badge(merchant, {"type": "first_purchase"}, name={"en": "First!"})
    Achievement.objects.create(merchant=merchant, customer=shopper, badge_definition=badge, badge=badge.name)
    after = api.get(proxy_url(merchant, "widgets", locale="en")).json()["contributions"]["gamification"]

    assert before["badges"] == []
    assert [b["name"] for b in after["badges"]] == ["First!"]
