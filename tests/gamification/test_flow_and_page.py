"""Shopify Flow's "award badge" action (signed like Flow signs it, resent by Flow) and the
merchant page at /app/gamification/."""

import base64
import hashlib
import hmac
import json
import tomllib
from pathlib import Path

from django.conf import settings

from apps.core.models import AuditLog
from apps.core.tenancy import merchant_scope
from apps.gamification import services
from apps.gamification.flow import ACTION_AWARD_BADGE, AwardBadgeInput
from apps.gamification.models import Achievement
from tests.factories import CustomerFactory
from tests.shopify_helpers import session_token

from .conftest import flow_triggers, make_badge, make_team


def _flow(client, merchant, properties, run_id="run-1"):
    body = json.dumps(
        {
            "shop_id": "1",
            "shopify_domain": merchant.shop_domain,
            "action_run_id": run_id,
            "action_definition_id": "Award badge",
            "handle": "loyalnest-award-badge",
            "properties": properties,
        }
    ).encode()
    signature = base64.b64encode(hmac.new(settings.SHOPIFY_API_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return client.post(
        "/shopify/flow/actions/loyalnest-award-badge",
        data=body,
        content_type="application/json",
        HTTP_X_SHOPIFY_HMAC_SHA256=signature,
    )


def test_flow_awards_a_badge_once_however_often_it_resends(
    client, merchant, other_merchant, django_capture_on_commit_callbacks
):
    badge = make_badge(merchant, {"type": "order_count", "count": 50}, name={"en": "Chosen"})
    foreign_badge = make_badge(other_merchant["merchant"], {"type": "first_purchase"})
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="4242")
    properties = {"customer_id": "gid://shopify/Customer/4242", "badge_id": badge.pk}

    with django_capture_on_commit_callbacks(execute=True):
        answers = [_flow(client, merchant, properties, run_id=f"run-{n % 2}").json() for n in range(4)]

    assert [a["created"] for a in answers] == [True, False, False, False]
    assert len({a["achievement_id"] for a in answers}) == 1
    assert Achievement.objects.get(merchant=merchant).customer == customer
    assert AuditLog.objects.filter(merchant=merchant, action="badge_earned").count() == 1
    assert [(h, p["customer_id"]) for h, p in flow_triggers()] == [("loyalnest-badge-awarded", 4242)]
    # Another shop's badge is not found, and nothing is awarded.
    refused = _flow(client, merchant, {"customer_id": "4242", "badge_id": foreign_badge.pk}, run_id="run-x")
    assert refused.status_code == 404
    assert not Achievement.objects.filter(badge_definition=foreign_badge).exists()


def test_a_bad_signature_awards_nothing(client, merchant):
    badge = make_badge(merchant, {"type": "first_purchase"})
    CustomerFactory(merchant=merchant, shopify_customer_id="4242")
    response = client.post(
        "/shopify/flow/actions/loyalnest-award-badge",
        data=json.dumps(
            {"shopify_domain": merchant.shop_domain, "properties": {"customer_id": "4242", "badge_id": badge.pk}}
        ),
        content_type="application/json",
        HTTP_X_SHOPIFY_HMAC_SHA256="forged",
    )
    assert response.status_code == 401
    assert not Achievement.objects.exists()


def _open(client, staff, **params):
    params["id_token"] = session_token(staff.merchant.shop_domain, user_id=staff.shopify_user_id)
    return client.get("/app/gamification/", params)


def test_the_page_shows_the_editor_for_22_locales_settings_teams_and_leaderboard(client, gamifier, other_merchant):
    merchant = gamifier.merchant
    make_badge(merchant, {"type": "first_purchase"}, name={"en": "First!"})
    make_team(merchant, "2026-11", "Red")
    make_badge(other_merchant["merchant"], {"type": "first_purchase"}, name={"en": "Foreign badge"})
    make_team(other_merchant["merchant"], "2026-11", "Foreign team")

    response = _open(client, gamifier, cycle="2026-11")

    html = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Security-Policy"].startswith("frame-ancestors")
    assert html.count('data-locale="') == 22
    for code in ("ar", "he", "fa"):
        assert f'name="name_{code}" lang="{code}" dir="rtl"' in html
    assert 'name="name_de" lang="de" dir="ltr"' in html
    assert "First!" in html and "Red" in html
    assert 'data-table="leaderboard"' in html and 'data-chart="teams"' in html and 'data-table="streaks"' in html
    assert "Foreign" not in html


def test_the_nav_links_the_page_and_staff_without_the_scope_get_403(client, gamifier, support):
    dashboard = client.get("/app/", {"id_token": session_token(gamifier.merchant.shop_domain)}).content.decode()
    assert "/app/gamification/" in dashboard
    assert _open(client, support).status_code == 403


def test_the_flow_extensions_declare_the_handles_and_payload_keys_the_code_sends(
    merchant, django_capture_on_commit_callbacks
):
    root = Path(settings.BASE_DIR) / "extensions"
    make_badge(merchant, {"type": "first_purchase"})
    make_badge(merchant, {"type": "streak", "length": 1})
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="4242")
    with django_capture_on_commit_callbacks(execute=True), merchant_scope(merchant):
        services.streak_record(merchant=merchant, customer_id=customer.pk, action_type="purchase", locale="en")

    sent = {handle: set(payload) for handle, payload in flow_triggers()}
    assert set(sent) == {"loyalnest-badge-awarded", "loyalnest-streak-reached"}
    for handle, keys in sent.items():
        declared = tomllib.loads((root / handle / "shopify.extension.toml").read_text())
        assert declared["extensions"][0]["handle"] == handle
        fields = {field.get("key", "customer_id") for field in declared["settings"]["fields"]}
        assert fields == keys
    action = tomllib.loads((root / ACTION_AWARD_BADGE / "shopify.extension.toml").read_text())
    assert action["extensions"][0]["runtime_url"].endswith(f"/shopify/flow/actions/{ACTION_AWARD_BADGE}")
    assert {field.get("key", "customer_id") for field in action["settings"]["fields"]} == set(AwardBadgeInput().fields)


def test_a_malformed_cycle_shows_the_current_one(client, gamifier):
    from apps.gamification.selectors import current_cycle

    html = _open(client, gamifier, cycle="2026-1'; --").content.decode()
    assert f'value="{current_cycle(merchant=gamifier.merchant)}"' in html
