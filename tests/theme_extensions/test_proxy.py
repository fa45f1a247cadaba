"""The widgets' storefront endpoints behind the app proxy (RELIABILITY A7, B2, D3, E5)."""

import json

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from apps.core.models import ProgramSettings
from apps.core.redis import get_redis
from apps.core.services import shopper_expression_get
from apps.core.streams import stream_name
from apps.core.tenancy import scopes_disabled
from apps.theme_extensions import registry
from apps.theme_extensions.experiments import variant_assign
from apps.theme_extensions.models import WidgetEventCount
from apps.theme_extensions.services import register_widget_contributor, theme_extension_configure
from tests.factories import CustomerFactory

from .conftest import OTHER_SHOP, SHOP, proxy_url

VARIANTS = [
    {"id": "cart", "placement": "cart_page", "weight": 50},
    {"id": "home", "placement": "home_page", "weight": 50},
]


def configure_ab(merchant, owner=None):
    theme_extension_configure(
        merchant=merchant,
        actor=owner,
        theme_extension_config={"widget": "rewards_panel", "placement": "cart_page", "variants": VARIANTS},
        locale="en",
    )


def test_shopper_widget_data_in_the_shoppers_locale(api, shopper, foreign):
    response = api.get(proxy_url("widgets", customer_id="6001", locale="ar"))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["shopper"]["points_balance"] == 800
    assert body["shopper"]["vip_tier"]["name"] == "فضي"
    assert body["shopper"]["next_tier"] == {
        "id": body["content"]["tiers"][1]["id"],
        "name": "ذهبي",
        "points_needed": 400,
        "progress_percent": 60,
    }
    assert body["shopper"]["next_reward"]["name"] == "$20 off"  # cheapest not yet affordable
    assert body["shopper"]["next_reward"]["points_needed"] == 700
    assert body["text"]["next_tier"] == "النقاط المتبقية للوصول إلى ذهبي: 400"
    assert body["content"]["dir"] == "rtl"
    assert [r["points_cost"] for r in body["content"]["rewards"]] == [300, 1500]
    assert "Beta" not in json.dumps(body)
    assert response["Cache-Control"] == "private, no-store"


def test_content_is_cached_per_merchant_and_locale_and_cleared_by_configuration(
    api, merchant, shopper, owner, django_capture_on_commit_callbacks
):
    api.get(proxy_url("widgets", customer_id="6001", locale="fr"))
    key = stream_name(merchant.pk, f"content:{merchant.pk}:fr")
    assert get_redis().xlen(key) == 1

    with django_capture_on_commit_callbacks(execute=True):
        configure_ab(merchant, owner)

    assert get_redis().exists(key) == 0
    body = api.get(proxy_url("widgets", customer_id="6001", locale="fr")).json()
    assert body["content"]["widgets"]["rewards_panel"]["variants"] == VARIANTS


def test_redis_down_answers_from_postgresql(api, shopper, redis_down):
    response = api.get(proxy_url("widgets", customer_id="6001", locale="en"))

    assert response.status_code == 200
    assert response.json()["shopper"]["points_balance"] == 800


def test_anonymous_visitor_gets_content_but_no_balance(api, merchant, loyalty, foreign):
    assert api.get(proxy_url("widgets", locale="en")).status_code == 401  # login required

    response = api.get(proxy_url("widgets/content", locale="en", visitor_id="visitor-0001"))

    assert response.status_code == 200
    body = response.json()
    assert body["shopper"] is None and "points_balance" not in json.dumps(body)
    assert "Beta" not in json.dumps(body)


def test_assignment_is_the_same_for_server_and_visitor(api, merchant, owner, loyalty):
    configure_ab(merchant, owner)
    expected = variant_assign(widget="rewards_panel", visitor="visitor-0001", variants=VARIANTS)

    body = api.get(proxy_url("widgets/content", locale="en", visitor_id="visitor-0001")).json()

    assert body["assignments"]["rewards_panel"] == {"variant": expected["id"], "placement": expected["placement"]}


@pytest.mark.parametrize("path", ["widgets", "widgets/content", "widgets/events"])
def test_unsigned_or_forged_requests_are_401(api, shopper, path):
    assert api.get(f"/proxy/v1/api/{path}?shop={SHOP}&logged_in_customer_id=6001").status_code == 401
    forged = proxy_url(path, customer_id="6001").replace("logged_in_customer_id=6001", "logged_in_customer_id=6002")
    assert api.get(forged).status_code == 401


def test_events_are_counted_per_variant_and_day(api, merchant, foreign):
    events = [
        {"widget": "rewards_panel", "variant": "cart", "placement": "cart_page", "kind": "impression"},
        {"widget": "rewards_panel", "variant": "cart", "placement": "cart_page", "kind": "impression"},
        {"widget": "rewards_panel", "variant": "cart", "placement": "cart_page", "kind": "click"},
    ]
    url = proxy_url("widgets/events", locale="en")
    for _ in range(2):
        response = api.post(url, data={"visitor_id": "visitor-0001", "events": events}, format="json")
        assert response.status_code == 202 and response.json()["recorded"] == 3

    counts = {row.kind: row.count for row in WidgetEventCount.objects.filter(merchant=merchant)}
    assert counts == {"impression": 4, "click": 2}
    assert not WidgetEventCount.objects.filter(merchant=foreign["merchant"]).exists()


@pytest.mark.parametrize(
    "event",
    [
        {"widget": "popup", "variant": "a", "placement": "cart_page", "kind": "impression"},
        {"widget": "rewards_panel", "variant": "A B", "placement": "cart_page", "kind": "impression"},
        {"widget": "rewards_panel", "variant": "a", "placement": "cart_page", "kind": "purchase"},
    ],
)
def test_bad_events_are_400_and_nothing_counted(api, merchant, event):
    response = api.post(proxy_url("widgets/events", locale="de"), data={"events": [event]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not WidgetEventCount.objects.exists()


def test_events_are_rate_limited(api, merchant):
    event = {"widget": "sticky_bar", "variant": "default", "placement": "all_pages", "kind": "impression"}
    with override_settings(PROXY_RATE_LIMITS={"storefront": "100/60", "widget_events": "2/60"}):
        codes = [
            api.post(proxy_url("widgets/events"), data={"events": [event]}, format="json").status_code for _ in range(3)
        ]
    assert codes == [202, 202, 429]
    assert WidgetEventCount.objects.get(merchant=merchant).count == 2


def test_any_accept_header_gets_json(api, shopper):
    response = api.get(proxy_url("widgets", customer_id="6001"), HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["shopper"]["points_balance"] == 800


@pytest.mark.django_db(transaction=True)
def test_a_failed_shopper_lookup_still_reads_or_drops_its_rate_limit_answer(api, shopper):
    """The count goes to Redis before the shopper is read from PostgreSQL; when that read fails,
    the request is answered 503, the count stands, and the next request reads its own answer."""
    register_widget_contributor("failing", lambda **kwargs: None, lookup=lambda merchant: ("1 / 0", {}))
    try:
        failed = api.get(proxy_url("widgets", customer_id="6001"))
    finally:
        registry.unregister("failing")
    with override_settings(PROXY_RATE_LIMITS={"storefront": "100/60", "widgets": "2/60"}):
        codes = [api.get(proxy_url("widgets", customer_id="6001")).status_code for _ in range(2)]

    assert failed.status_code == 503, failed.json()
    assert failed.json()["error"]["code"] == "service_unavailable"
    assert codes == [200, 429]  # the failed request was counted: 2 of 2 used by the first of these


def test_registered_contributors_plug_in_and_a_failing_one_is_left_out(api, shopper):
    def streak(*, merchant, customer, locale):
        return {"days": 5, "merchant": merchant.pk, "customer": customer.pk, "locale": locale}

    def broken(*, merchant, customer, locale):
        raise RuntimeError("boom")

    register_widget_contributor("streak", streak)
    register_widget_contributor("broken", broken)
    try:
        body = api.get(proxy_url("widgets", customer_id="6001", locale="de")).json()
    finally:
        registry.unregister("streak")
        registry.unregister("broken")

    # Feature apps register their own contributors too (gamification, wallet): check ours.
    assert body["contributions"]["streak"] == {
        "days": 5,
        "merchant": shopper.merchant_id,
        "customer": shopper.pk,
        "locale": "de",
    }
    assert "broken" not in body["contributions"]


def test_a_contributor_lookup_is_read_with_the_shopper_in_one_query(api, shopper, other_merchant):
    """A contributor's per-shopper SQL rides on the shopper lookup: a widget request makes one
    query, and the value equals what the contributor reads for itself without it."""
    CustomerFactory(merchant=shopper.merchant, shopify_customer_id="6002")
    CustomerFactory(merchant=other_merchant["merchant"], shopify_customer_id="6003")  # not counted
    calls = []

    def lookup(merchant):
        sql = "SELECT count(*) FROM users v WHERE v.merchant_id = %(orders_merchant)s AND v.id <> u.id"
        return sql, {"orders_merchant": merchant.pk}

    def others(*, merchant, customer, locale, looked_up=None):
        calls.append(looked_up)
        if looked_up is None:
            sql, params = lookup(merchant)
            looked_up = shopper_expression_get(customer=customer, sql=sql, params=params)
        return {"other_shoppers": looked_up, "locale": locale}

    register_widget_contributor("orders", others, lookup=lookup)
    try:
        api.get(proxy_url("widgets", customer_id="6001", locale="de"))  # the shop and its content read once
        with CaptureQueriesContext(connection) as queries:
            body = api.get(proxy_url("widgets", customer_id="6001", locale="de")).json()
        calls.clear()
        with scopes_disabled():
            direct = others(merchant=shopper.merchant, customer=shopper, locale="de")
    finally:
        registry.unregister("orders")

    assert body["contributions"]["orders"] == direct == {"other_shoppers": 1, "locale": "de"}
    assert calls == [None]  # read directly, without the lookup
    # One query: the shopper's row with every contributor's lookup (gamification's too).
    assert len(queries.captured_queries) == 1, [q["sql"][:80] for q in queries.captured_queries]
    assert "also_orders" in queries.captured_queries[0]["sql"]
    assert "also_gamification" in queries.captured_queries[0]["sql"]


def test_a_lookup_whose_parameters_lack_the_contributor_name_is_left_out(api, shopper):
    """Parameters of different contributors must not collide: a lookup naming another's is not
    read with the shopper; its contributor reads for itself and the widget still answers."""
    calls = []

    def named(*, merchant, customer, locale, looked_up=None):
        calls.append(looked_up)
        return {"ok": True}

    register_widget_contributor("named", named, lookup=lambda merchant: ("1", {"other_x": 1}))
    try:
        response = api.get(proxy_url("widgets", customer_id="6001", locale="de"))
    finally:
        registry.unregister("named")

    assert response.status_code == 200
    assert response.json()["contributions"]["named"] == {"ok": True}
    assert calls == [None]


def test_contributor_names_are_checked():
    with pytest.raises(ValueError):
        register_widget_contributor("Bad Name", lambda **kwargs: None)


def test_other_shop_sees_only_its_own_configuration(api, merchant, owner, foreign):
    configure_ab(merchant, owner)

    body = api.get(proxy_url("widgets/content", shop=OTHER_SHOP, locale="en", visitor_id="visitor-0001")).json()

    assert body["content"]["widgets"]["rewards_panel"]["texts"] == {"title": "Beta secret title"}
    assert body["assignments"] == {}
    assert ProgramSettings.objects.get(merchant=foreign["merchant"]).theme_extension_config["widgets"].keys() == {
        "rewards_panel"
    }
