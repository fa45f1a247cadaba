"""LoyalNest Collective beta flags read by gamification: `team_leaderboards` (shopper-facing
teams: joining from the storefront, team ranks in the team-rank endpoint and the widget) and
`streaks` (switching to weekly streak periods). Each flag changes that store only."""

import json

from apps.gamification.models import GamificationSettings, TeamMembership
from apps.gamification.selectors import current_cycle
from tests.factories import CustomerFactory
from tests.shopify_helpers import auth_header
from tests.slack_community.beta import beta_on

from .conftest import make_team
from .test_storefront import SHOPPER_ID, proxy_url

SETTINGS = "/v1/api/gamification/settings"


def _join(api, merchant, team):
    return api.post(proxy_url(merchant, "gamification/teams/join"), data={"team_id": team.pk}, format="json")


def _store(merchant):
    CustomerFactory(merchant=merchant, shopify_customer_id=SHOPPER_ID)
    return make_team(merchant, current_cycle(merchant=merchant), "Red")


def test_team_leaderboards_turns_on_storefront_teams_for_that_store_only(api, merchant, other_merchant):
    other = other_merchant["merchant"]
    ours, theirs = _store(merchant), _store(other)

    refused = _join(api, merchant, ours)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "team_not_open"
    rank = api.get(proxy_url(merchant, "gamification/team-rank")).json()
    assert (rank["ranking"], rank["team"], rank["teams"]) == ([], None, [])

    beta_on(merchant, "team_leaderboards")

    assert _join(api, merchant, ours).status_code == 200
    assert _join(api, other, theirs).status_code == 409
    assert list(TeamMembership.objects.values_list("team_id", flat=True)) == [ours.pk]
    rank = api.get(proxy_url(merchant, "gamification/team-rank")).json()
    assert rank["team"]["team_id"] == ours.pk and [t["team_id"] for t in rank["teams"]] == [ours.pk]
    their_rank = api.get(proxy_url(other, "gamification/team-rank")).json()
    assert (their_rank["ranking"], their_rank["teams"]) == ([], [])
    widget = api.get(proxy_url(merchant, "widgets")).json()["contributions"]["gamification"]
    their_widget = api.get(proxy_url(other, "widgets")).json()["contributions"]["gamification"]
    assert widget["team"]["team_id"] == ours.pk and [t["team_id"] for t in widget["teams"]] == [ours.pk]
    assert their_widget["team"] is None and their_widget["teams"] == []
    assert "Red" not in json.dumps(their_widget)


def _settings(api, staff, period):
    body = {"streak_period": period, "streak_actions": ["purchase"]}
    return api.put(SETTINGS, data=json.dumps(body), content_type="application/json", **auth_header(staff))


def test_streaks_allows_weekly_periods_for_that_store_only(api, gamifier, other_merchant):
    merchant, other = gamifier.merchant, other_merchant["merchant"]

    refused = _settings(api, gamifier, "week")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "beta_feature_required"
    assert refused.json()["error"]["fields"] == {"beta_feature": ["streaks"]}
    assert not GamificationSettings.objects.filter(merchant=merchant, streak_period="week").exists()
    assert _settings(api, gamifier, "month").status_code == 200  # monthly streaks are for everyone

    beta_on(merchant, "streaks")

    assert _settings(api, gamifier, "week").status_code == 200
    assert _settings(api, other_merchant["owner"], "week").status_code == 403
    assert GamificationSettings.objects.get(merchant=merchant).streak_period == "week"
    assert not GamificationSettings.objects.filter(merchant=other, streak_period="week").exists()


def test_a_store_already_weekly_keeps_its_weekly_streaks_without_the_flag(api, gamifier):
    GamificationSettings.objects.create(merchant=gamifier.merchant, streak_period="week")

    assert _settings(api, gamifier, "week").status_code == 200
