"""Merchant API: the seeds' streak and team-leaderboard endpoints, badges, settings, teams;
RBAC (403 changes nothing), tenant isolation, bad badge JSON answered 400 in the caller's locale."""

import json

import pytest

from apps.core.models import AuditLog
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from apps.gamification.models import Achievement, Badge, GamificationSettings, Streak, TeamLeaderboard
from tests.factories import CustomerFactory
from tests.shopify_helpers import auth_header
from tests.slack_community.beta import beta_on

from .conftest import make_badge, make_team

STREAK_URL = "/v1/api/gamification/streak"
TEAMS_URL = "/v1/api/team-leaderboards"
BADGES_URL = "/v1/api/gamification/badges"


def _post(api, staff, url, body, method="post"):
    return getattr(api, method)(url, data=json.dumps(body), content_type="application/json", **auth_header(staff))


def _foreign(other_merchant):
    other = other_merchant["merchant"]
    badge = make_badge(other, {"type": "streak", "length": 1}, name={"en": "Theirs"})
    team = make_team(other, "2026-11", "Theirs")
    Streak.objects.create(
        merchant=other,
        customer=other_merchant["customers"][0],
        current_count=7,
        longest_count=7,
        last_period_date="2026-11-01",
    )
    return badge, team


def test_the_seeds_streak_call_grows_the_streak_once_per_period_and_names_the_badge(
    api, gamifier, customer, other_merchant, django_capture_on_commit_callbacks
):
    foreign_badge, _team = _foreign(other_merchant)
    make_badge(gamifier.merchant, {"type": "streak", "length": 1}, name={"en": "Off we go", "es": "¡Vamos!"})
    body = {"customer_id": customer.pk, "action_type": "purchase", "locale": "es"}

    with django_capture_on_commit_callbacks(execute=True):
        first = _post(api, gamifier, STREAK_URL, body)
        again = _post(api, gamifier, STREAK_URL, body)

    assert first.status_code == 200
    assert first.json() == {"status": "ok", "streak_count": 1, "badge": "¡Vamos!", "error": None}
    assert again.json() == {"status": "ok", "streak_count": 1, "badge": "", "error": None}
    assert Achievement.objects.filter(merchant=gamifier.merchant, customer=customer).count() == 1
    audit = AuditLog.objects.get(merchant=gamifier.merchant, action="streak_earned")
    assert audit.metadata["streak_count"] == 1 and audit.metadata["source"] == "api:purchase"
    entries = get_redis().xrange(stream_name(gamifier.merchant.pk, f"streak:{customer.pk}"))
    assert len(entries) == 1 and json.loads(entries[0][1]["data"])["streak_count"] == 1
    assert not Achievement.objects.filter(badge_definition=foreign_badge).exists()
    assert Streak.objects.get(merchant=other_merchant["merchant"]).current_count == 7


def test_another_shops_customer_is_404_and_changes_nothing(api, gamifier, other_merchant):
    _foreign(other_merchant)
    theirs = other_merchant["customers"][0]
    response = _post(api, gamifier, STREAK_URL, {"customer_id": theirs.pk, "action_type": "purchase"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert Streak.objects.get(merchant=other_merchant["merchant"]).current_count == 7
    assert not Streak.objects.filter(merchant=gamifier.merchant).exists()


def test_an_action_the_shop_does_not_count_is_refused(api, gamifier, customer):
    response = _post(api, gamifier, STREAK_URL, {"customer_id": customer.pk, "action_type": "review"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "action_not_qualifying"
    GamificationSettings.objects.create(merchant=gamifier.merchant, streak_actions=["purchase", "review"])
    response = _post(api, gamifier, STREAK_URL, {"customer_id": customer.pk, "action_type": "review"})
    assert response.json()["streak_count"] == 1


def test_without_admin_gamification_every_write_is_403_and_changes_nothing(api, support, customer, other_merchant):
    merchant = support.merchant
    badge = make_badge(merchant, {"type": "first_purchase"})
    team = make_team(merchant, "2026-11", "Red")
    before = AuditLog.objects.filter(merchant=merchant).count()
    calls = [
        (STREAK_URL, {"customer_id": customer.pk, "action_type": "purchase"}, "post"),
        (TEAMS_URL, {"team_id": team.pk, "score": 500, "cycle": "2026-11"}, "post"),
        (BADGES_URL, {"name": {"en": "X"}, "rule": {"type": "first_purchase"}}, "post"),
        (f"{BADGES_URL}/{badge.pk}", {"name": {"en": "X"}, "rule": {"type": "order_count", "count": 9}}, "put"),
        ("/v1/api/gamification/settings", {"streak_period": "week", "streak_actions": ["purchase"]}, "put"),
        ("/v1/api/gamification/teams", {"name": {"en": "Blue"}, "cycle": "2026-11"}, "post"),
        (f"/v1/api/gamification/teams/{team.pk}/members", {"customer_ids": [customer.pk]}, "post"),
    ]
    for url, body, method in calls:
        response = _post(api, support, url, body, method)
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "permission_denied"
    assert not Streak.objects.filter(merchant=merchant).exists()
    assert TeamLeaderboard.objects.get(merchant=merchant, team_id=team.pk).score == 0
    badge.refresh_from_db()
    assert (badge.version, badge.rule, Badge.objects.filter(merchant=merchant).count()) == (
        1,
        {"type": "first_purchase"},
        1,
    )
    assert not GamificationSettings.objects.filter(merchant=merchant).exists()
    assert AuditLog.objects.filter(merchant=merchant).count() == before


def test_the_seeds_team_leaderboard_call_sets_the_score_and_the_ranking(
    api, gamifier, other_merchant, django_capture_on_commit_callbacks
):
    _badge, foreign_team = _foreign(other_merchant)
    merchant = gamifier.merchant
    red, blue = make_team(merchant, "2026-11", "Red"), make_team(merchant, "2026-11", "Blue")
    body = {"merchant_id": merchant.pk, "team_id": blue.pk, "score": 120, "cycle": "2026-11", "locale": "en"}

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api, gamifier, TEAMS_URL, body)

    payload = response.json()
    assert response.status_code == 200
    assert payload == {"status": "ok", "leaderboard_id": payload["leaderboard_id"], "error": None}
    row = TeamLeaderboard.objects.get(pk=payload["leaderboard_id"])
    assert (row.merchant_id, row.team_id, row.score, row.cycle) == (merchant.pk, blue.pk, 120, "2026-11")
    audit = AuditLog.objects.get(merchant=merchant, action="team_leaderboard_updated")
    assert audit.metadata["team_id"] == blue.pk and audit.metadata["score"] == 120
    assert get_redis().zscore(f"team_leaderboard:{merchant.pk}:2026-11", blue.pk) == 120

    ranking = api.get(f"{TEAMS_URL}?cycle=2026-11", **auth_header(gamifier)).json()
    assert [(r["rank"], r["team_id"], r["score"]) for r in ranking["ranking"]] == [(1, blue.pk, 120), (2, red.pk, 0)]
    assert ranking["chart"]["type"] == "bar" and ranking["chart"]["data"]["datasets"][0]["data"] == [120, 0]
    assert foreign_team.pk not in json.dumps(ranking)


def test_a_team_of_another_shop_or_another_merchant_id_is_404(api, gamifier, other_merchant):
    _badge, foreign_team = _foreign(other_merchant)
    mine = make_team(gamifier.merchant, "2026-11", "Red")
    for body in (
        {"team_id": foreign_team.pk, "score": 999, "cycle": "2026-11"},
        {"merchant_id": other_merchant["merchant"].pk, "team_id": mine.pk, "score": 999, "cycle": "2026-11"},
    ):
        response = _post(api, gamifier, TEAMS_URL, body)
        assert response.status_code == 404
    assert TeamLeaderboard.objects.get(team_id=foreign_team.pk).score == 0
    assert TeamLeaderboard.objects.get(team_id=mine.pk).score == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": {"xx": "Star"}, "rule": {"type": "first_purchase"}}, "name"),
        ({"name": {}, "rule": {"type": "first_purchase"}}, "name"),
        ({"name": {"en": "Star"}, "rule": {"type": "moon_phase"}}, "rule.type"),
        ({"name": {"en": "Star"}, "rule": {"type": "seasonal", "start": "12-01"}}, "rule.end"),
        ({"name": {"en": "Star"}, "rule": {"type": "streak", "length": 3, "bonus": 1}}, "rule.bonus"),
    ],
)
def test_bad_badge_json_is_400_and_nothing_is_stored(api, gamifier, other_merchant, body, field):
    _foreign(other_merchant)
    response = _post(api, gamifier, BADGES_URL, body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Badge.objects.filter(merchant=gamifier.merchant).exists()


def test_the_400_message_speaks_the_request_locale(api, gamifier):
    response = _post(
        api, gamifier, BADGES_URL, {"name": {"xx": "Star"}, "rule": {"type": "first_purchase"}, "locale": "de"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Unbekannte Sprache: xx."


def test_badges_are_created_listed_edited_and_archived_per_shop(api, gamifier, other_merchant):
    _foreign(other_merchant)
    created = _post(
        api,
        gamifier,
        BADGES_URL,
        {
            "name": {"en": "Seasonal Star", "ar": "نجم الموسم"},
            "icon": "snowflake",
            "rule": {"type": "seasonal", "start": "12-01", "end": "01-15"},
        },
    )
    assert created.status_code == 201
    badge_id = created.json()["badge"]["badge_id"]
    listed = api.get(f"{BADGES_URL}?locale=ar", **auth_header(gamifier)).json()["badges"]
    assert [(b["badge_id"], b["name"]) for b in listed] == [(badge_id, "نجم الموسم")]
    edited = _post(
        api,
        gamifier,
        f"{BADGES_URL}/{badge_id}",
        {"name": {"en": "Winter Star"}, "rule": {"type": "seasonal", "start": "12-15", "end": "01-31"}},
        "put",
    )
    assert edited.json()["badge"]["version"] == 2
    archived = api.delete(f"{BADGES_URL}/{badge_id}", **auth_header(gamifier)).json()["badge"]
    assert archived["is_active"] is False and archived["version"] == 3
    foreign_id = Badge.objects.get(merchant=other_merchant["merchant"]).pk
    assert (
        _post(
            api,
            gamifier,
            f"{BADGES_URL}/{foreign_id}",
            {"name": {"en": "Mine"}, "rule": {"type": "first_purchase"}},
            "put",
        ).status_code
        == 404
    )
    assert Badge.objects.get(pk=foreign_id).name == {"en": "Theirs"}


def test_teams_settings_and_assignments(api, gamifier, other_merchant):
    _foreign(other_merchant)
    merchant = gamifier.merchant
    beta_on(merchant, "streaks")  # weekly streak periods are the beta feature
    ada, bob = CustomerFactory(merchant=merchant), CustomerFactory(merchant=merchant)
    team_id = _post(api, gamifier, "/v1/api/gamification/teams", {"name": {"en": "Red"}, "cycle": "2026-11"}).json()[
        "team_id"
    ]
    assert (
        _post(api, gamifier, "/v1/api/gamification/teams", {"name": {"en": "Red"}, "cycle": "2026-13"}).status_code
        == 400
    )
    assigned = _post(api, gamifier, f"/v1/api/gamification/teams/{team_id}/members", {"customer_ids": [ada.pk, bob.pk]})
    assert assigned.json()["assigned"] == 2
    theirs = other_merchant["customers"][0].pk
    refused = _post(api, gamifier, f"/v1/api/gamification/teams/{team_id}/members", {"customer_ids": [theirs]})
    assert refused.status_code == 404
    teams = api.get("/v1/api/gamification/teams?cycle=2026-11", **auth_header(gamifier)).json()["teams"]
    assert [(t["team_id"], t["member_count"]) for t in teams] == [(team_id, 2)]
    saved = _post(
        api,
        gamifier,
        "/v1/api/gamification/settings",
        {"streak_period": "week", "streak_actions": ["purchase", "visit"]},
        "put",
    )
    assert saved.json()["settings"] == {
        "streak_period": "week",
        "streak_actions": ["purchase", "visit"],
        "streak_notify_min": 2,
    }
    assert not GamificationSettings.objects.filter(merchant=other_merchant["merchant"]).exists()


def test_another_shops_ids_are_404_on_every_gamification_route(api, gamifier, other_merchant):
    """B2 for this app's routes (the route walk of tests/core/test_tenancy.py, with our ids)."""
    import re

    from django.urls import URLPattern, URLResolver, get_resolver

    badge, team = _foreign(other_merchant)
    foreign = {"badge_id": badge.pk, "team_id": team.pk, "customer_id": other_merchant["customers"][0].pk}
    routes = []

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                routes.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns, "/")
    ours = [r for r in routes if r.startswith("/v1/api/gamification/") and "<" in r]
    assert len(ours) == 3
    for route in ours:
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: foreign[m.group(1)], route)
        for method in ("get", "post", "put", "delete"):
            response = getattr(api, method)(path, data=foreign, format="json", **auth_header(gamifier))
            assert response.status_code in (400, 404, 405), f"{method} {route}: {response.status_code}"
            assert not any(value in response.content.decode() for value in ("Theirs", other_merchant["merchant"].pk))
    badge.refresh_from_db()
    assert (badge.version, badge.is_active) == (1, True)
    assert not team.memberships.exists()
