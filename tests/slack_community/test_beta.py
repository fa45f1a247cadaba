"""Beta features: `POST /v1/api/slack/beta`, its Slack announcement through the outbox, the
`slack_beta_features` shop metafield, and a flag that really gates a feature (the RFM churn
model's neural network) for that merchant and not another."""

import json

import pytest
from django.utils import translation

from apps.core.models import AuditLog
from apps.core.redis import get_redis
from apps.core.streams import stream_name
from apps.core.tenancy import merchant_scope
from apps.notifications.models import Notification
from apps.slack_community.models import SlackCommunityMember, SlackCommunityUser
from apps.slack_community.selectors import beta_feature_enabled, beta_features_get
from apps.slack_community.services import UnknownBetaFeature
from apps.slack_community.shop_metafield import slack_community_metafields_write
from tests.fakes.shopify_ops_metafields import metafield_get
from tests.notifications.support import SLACK_WEBHOOK, connect_providers, deliver_due
from tests.shopify_helpers import auth_header, shopify_connect

BETA = "/v1/api/slack/beta"


def _member(merchant, slack_user_id, **fields):
    member = SlackCommunityMember.objects.create(merchant=merchant, slack_user_id=slack_user_id, **fields)
    SlackCommunityUser.objects.create(slack_user_id=slack_user_id, merchant=merchant, community_id=member.pk)
    return member


def _beta(api, staff, **body):
    return api.post(BETA, data={"locale": "en", **body}, format="json", **auth_header(staff))


@pytest.fixture
def members(merchant, other_merchant):
    ours = [_member(merchant, "U0ALPHA1234", status="active"), _member(merchant, "U0ALPHA5678")]
    theirs = _member(other_merchant["merchant"], "U0BETA56789", beta_features={"streaks": True})
    return ours, theirs


def test_enabling_a_beta_feature_as_the_seeds(
    api, owner, merchant, other_merchant, members, slack, django_capture_on_commit_callbacks
):
    connect_providers(merchant)
    _ours, theirs = members

    with django_capture_on_commit_callbacks(execute=True):
        response = _beta(api, owner, merchant_id=merchant.pk, feature="rfm_advanced", locale="es")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "beta_features": {"rfm_advanced": True}, "error": None}
    # Every row of the merchant carries the flags; the other merchant's row is untouched.
    assert {m.beta_features["rfm_advanced"] for m in SlackCommunityMember.objects.filter(merchant=merchant)} == {True}
    theirs.refresh_from_db()
    assert theirs.beta_features == {"streaks": True}
    audit = AuditLog.objects.get(merchant=merchant, action="beta_feature_enabled")
    assert audit.metadata["beta_feature"] == "rfm_advanced" and audit.actor == owner
    entry = get_redis().xrevrange(stream_name(merchant.pk, f"beta:{merchant.pk}"), count=1)[0]
    assert json.loads(entry[1]["data"])["beta_features"] == {"rfm_advanced": True}
    assert not get_redis().exists(stream_name(other_merchant["merchant"].pk, f"beta:{merchant.pk}"))
    announcement = Notification.objects.get(merchant=merchant, type="beta_feature_released")
    assert announcement.channel == "slack" and announcement.locale == "es"
    assert not Notification.objects.filter(merchant=other_merchant["merchant"]).exists()

    # The relay posts it to the merchant's Slack webhook (path kept, host swapped for the fake).
    deliver_due()
    posted = [r for r in slack.requests if r.path.startswith("/services/")]
    assert [r.path for r in posted] == [SLACK_WEBHOOK.removeprefix("https://hooks.slack.com")]
    text = posted[0].json()["text"]
    assert "Modelo de abandono con red neuronal" in text and "LoyalNest" in text  # in Spanish


def test_switching_off_and_repeating_are_recorded_once(api, owner, merchant, members):
    assert _beta(api, owner, feature="streaks").status_code == 200
    assert _beta(api, owner, feature="streaks").status_code == 200

    off = _beta(api, owner, feature="streaks", enabled=False)

    assert off.json()["beta_features"] == {}
    assert AuditLog.objects.filter(merchant=merchant, action="beta_feature_enabled").count() == 1
    assert AuditLog.objects.filter(merchant=merchant, action="beta_feature_disabled").count() == 1
    assert Notification.objects.filter(merchant=merchant, type="beta_feature_released").count() == 1
    assert not beta_feature_enabled(merchant, "streaks")


def test_bad_input_is_a_localized_400_and_changes_nothing(api, owner, merchant, members):
    unknown = _beta(api, owner, feature="time_travel", locale="fr")
    extra = _beta(api, owner, feature="streaks", discount=100)

    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_beta_feature"
    with translation.override("fr"):
        assert unknown.json()["error"]["message"] == str(UnknownBetaFeature.default_message)
    assert extra.status_code == 400 and extra.json()["error"]["code"] == "validation_error"
    assert beta_features_get(merchant=merchant) == {}


def test_before_joining_it_is_409(api, owner, merchant, other_merchant):
    _member(other_merchant["merchant"], "U0BETA56789")

    response = _beta(api, owner, feature="streaks")

    assert response.status_code == 409 and response.json()["error"]["code"] == "not_a_member"
    assert not AuditLog.objects.filter(action="beta_feature_enabled").exists()


def test_another_merchants_id_is_404_and_without_the_scope_403(api, owner, support, merchant, other_merchant, members):
    foreign = _beta(api, owner, merchant_id=other_merchant["merchant"].pk, feature="streaks")
    denied = _beta(api, support, feature="streaks")

    assert foreign.status_code == 404 and denied.status_code == 403
    assert beta_features_get(merchant=merchant) == {}
    assert beta_features_get(merchant=other_merchant["merchant"]) == {"streaks": True}
    assert not AuditLog.objects.filter(action="beta_feature_enabled").exists()


def test_the_list_shows_only_this_merchants_flags(api, owner, merchant, other_merchant, members):
    response = api.get(BETA, **auth_header(owner))

    features = {f["feature"]: f["enabled"] for f in response.json()["features"]}
    assert features == {"rfm_advanced": False, "streaks": False, "team_leaderboards": False, "google_wallet": False}


def test_the_shop_metafields_are_written_in_the_seeds_shape(
    api, owner, merchant, other_merchant, members, fake_shopify
):
    shopify_connect(fake_shopify, merchant)
    _beta(api, owner, feature="rfm_advanced")
    _beta(api, owner, feature="streaks")

    digests = slack_community_metafields_write(merchant=merchant)

    gid = fake_shopify.shop(merchant.shop_domain).gid
    beta = metafield_get(fake_shopify, merchant.shop_domain, gid, "slack_beta_features")
    community = metafield_get(fake_shopify, merchant.shop_domain, gid, "slack_community")
    assert set(digests) == {"slack_beta_features", "slack_community"}
    assert beta["type"] == "json" and json.loads(beta["value"]) == {"rfm_advanced": True, "streaks": True}
    assert json.loads(community["value"]) == {"slack_user_id": "U0ALPHA1234", "status": "active"}
    assert metafield_get(fake_shopify, other_merchant["merchant"].shop_domain, gid, "slack_beta_features") is None


def test_rfm_advanced_adds_the_neural_network_for_that_merchant_only(api, owner, merchant, other_merchant, members):
    from apps.rfm import services as rfm_services
    from tests.rfm.conftest import NOW, build_history

    other = other_merchant["merchant"]
    build_history(merchant, customers=400, seed=3)
    build_history(other, customers=400, seed=3, prefix="o")
    assert _beta(api, owner, feature="rfm_advanced").status_code == 200

    with merchant_scope(merchant):
        ours = rfm_services.churn_model_train(merchant=merchant, now=NOW)
    with merchant_scope(other):
        theirs = rfm_services.churn_model_train(merchant=other, now=NOW)

    assert {c["algorithm"] for c in ours.candidates} == {"logistic_regression", "mlp"}
    assert {c["algorithm"] for c in theirs.candidates} == {"logistic_regression"}
    assert beta_feature_enabled(merchant, "rfm_advanced") and not beta_feature_enabled(other, "rfm_advanced")
