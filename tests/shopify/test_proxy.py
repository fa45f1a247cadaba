"""The storefront API behind Shopify's app proxy (RELIABILITY A7, B2, C2, C3, D3, D6, E5)."""

import hashlib
import hmac
import re
import socket
import threading
import time
from urllib.parse import parse_qsl, urlencode

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from apps.core import redis as core_redis
from apps.core.models import AuditLog, Customer, IdempotencyRecord, PointsTransaction, ReferralLink
from apps.core.services import points_earn, referral_link_get_or_create
from apps.core.streams import stream_append
from apps.shopify.models import RewardRedemption
from tests.factories import CustomerFactory, RewardFactory, VipTierFactory
from tests.shopify_helpers import proxy_signed_query, shopify_connect

SHOP = "alpha-pets.myshopify.com"
OTHER_SHOP = "beta-gadgets.myshopify.com"
OTHER_APP_SECRET = "a-different-apps-client-secret-0123456789abcdef"


def call(api, method, path, shop=SHOP, customer_id=None, *, data=None, headers=None, secret=None, **params):
    query = proxy_signed_query(shop, customer_id, secret=secret, **params)
    url = f"/proxy/v1/api/{path}?{query}"
    if method == "get":
        return api.get(url, **(headers or {}))
    return api.post(url, data=data or {}, format="json", **(headers or {}))


def ledger_state():
    return (
        PointsTransaction.objects.count(),
        sorted(Customer.objects.values_list("id", "points_balance")),
        IdempotencyRecord.objects.count(),
        ReferralLink.objects.count(),
    )


@pytest.fixture
def redis_down():
    """Point the app at a port where no Redis listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        core_redis._client.cache_clear()
        yield
    core_redis._client.cache_clear()


@pytest.fixture
def shopper(merchant):
    customer = CustomerFactory(
        merchant=merchant, shopify_customer_id="6001", email="ada@example.com", first_name="Ada", last_name="Lovelace"
    )
    points_earn(merchant=merchant, customer=customer, points=1000, idempotency_key="seed-ada")
    customer.refresh_from_db()
    return customer


@pytest.fixture
def reward(merchant):
    return RewardFactory(merchant=merchant, points_cost=300, name={"en": "$5 off", "fr": "5 $ de réduction"})


@pytest.fixture
def foreign(other_merchant):
    """Merchant B's shopper with points, a reward and a referral link: none may leak to shop A."""
    b = other_merchant["merchant"]
    customer = other_merchant["customers"][0]
    points_earn(merchant=b, customer=customer, points=777, idempotency_key="b-seed")
    reward = RewardFactory(merchant=b, points_cost=100, name={"en": "Beta secret reward"})
    link = referral_link_get_or_create(merchant=b, customer=customer)
    return {"merchant": b, "customer": customer, "reward": reward, "code": link.code}


def foreign_leaks(response, foreign) -> list[str]:
    text = response.content.decode()
    values = [
        foreign["customer"].pk,
        foreign["customer"].email,
        foreign["reward"].pk,
        "Beta secret reward",
        foreign["code"],
        foreign["merchant"].pk,
        foreign["merchant"].name,
    ]
    return [value for value in values if value and value in text]


# --- the signature (A7) ------------------------------------------------------------------------


def test_the_signature_helper_signs_as_shopify_documents_it():
    """Sorted `key=value` pairs, no separator, a repeated parameter's values joined by `,`."""
    query = proxy_signed_query("shop-name.myshopify.com", 1, secret="hush", timestamp=1317327555, extra=["1", "2"])

    pairs = parse_qsl(query, keep_blank_values=True)
    message = (
        "extra=1,2logged_in_customer_id=1path_prefix=/apps/loyalnestshop=shop-name.myshopify.comtimestamp=1317327555"
    )
    assert [value for key, value in pairs if key == "extra"] == ["1", "2"]
    assert dict(pairs)["signature"] == hmac.new(b"hush", message.encode(), hashlib.sha256).hexdigest()


def test_a_signed_request_reads_the_shoppers_points(api, merchant, shopper, foreign):
    response = call(api, "get", "points", customer_id="6001")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    assert body["points_balance"] == 1000 and body["lifetime_points"] == 1000
    assert response["Cache-Control"] == "private, no-store"
    assert [t["points"] for t in body["transactions"]] == [1000]
    assert "ada@example.com" not in response.content.decode()
    assert foreign_leaks(response, foreign) == []


def _tampered(query: str, **changes) -> str:
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(changes)
    return urlencode({k: v for k, v in params.items() if v is not None})


@pytest.mark.parametrize(
    "make_query",
    [
        lambda: "",
        lambda: _tampered(proxy_signed_query(SHOP, "6001"), signature=None),
        lambda: _tampered(proxy_signed_query(SHOP, "6001"), signature="0" * 64),
        lambda: _tampered(proxy_signed_query(SHOP, "6002"), logged_in_customer_id="6001"),
        lambda: _tampered(proxy_signed_query(OTHER_SHOP, "6001"), shop=SHOP),
        lambda: _tampered(proxy_signed_query(SHOP, "6001"), timestamp=None),
        lambda: proxy_signed_query(SHOP, "6001", timestamp=int(time.time()) - 600),
        lambda: proxy_signed_query(SHOP, "6001", timestamp=int(time.time()) + 600),
        lambda: proxy_signed_query(SHOP, "6001", secret=OTHER_APP_SECRET),
        lambda: proxy_signed_query(SHOP, "6001") + "&shop=" + OTHER_SHOP,
        lambda: proxy_signed_query("alpha-pets.example.com", "6001"),
        lambda: proxy_signed_query(SHOP, "not-a-number"),
    ],
    ids=[
        "no-query",
        "no-signature",
        "wrong-signature",
        "customer-swapped",
        "shop-swapped",
        "no-timestamp",
        "stale",
        "future",
        "another-apps-secret",
        "two-shops",
        "not-a-shop-domain",
        "customer-not-an-id",
    ],
)
def test_bad_signatures_are_401_and_change_nothing(api, merchant, shopper, reward, foreign, make_query):
    before = ledger_state()
    query = make_query()

    for method, path in [("get", "points"), ("post", "points/redeem"), ("get", "referral-link")]:
        url = f"/proxy/v1/api/{path}?{query}"
        if method == "get":
            response = api.get(url)
        else:
            response = api.post(url, {"reward_id": reward.pk}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert response.status_code == 401, (path, response.content)
        assert response.json()["error"]["code"] == "authentication_failed"
        assert "X-Shopify-Retry-Invalid-Session-Request" not in response
        assert foreign_leaks(response, foreign) == []
    assert ledger_state() == before


def test_the_previous_secret_is_accepted_during_a_rotation(api, merchant, shopper):
    old = "the-old-client-secret-still-valid-during-rotation"
    with override_settings(SHOPIFY_API_SECRET_PREVIOUS=old):
        assert call(api, "get", "points", customer_id="6001", secret=old).status_code == 200
    assert call(api, "get", "points", customer_id="6001", secret=old).status_code == 401


def test_without_a_configured_secret_nothing_is_trusted(api, merchant, shopper, settings):
    settings.SHOPIFY_API_SECRET = ""

    assert call(api, "get", "points", customer_id="6001", secret="x").status_code == 401
    assert call(api, "get", "points", customer_id="6001", secret="").status_code == 401


def test_an_unknown_or_uninstalled_shop_is_404(api, merchant, shopper, foreign):
    assert call(api, "get", "rewards", shop="nobody-here.myshopify.com").status_code == 404
    merchant.is_installed = False
    merchant.save()

    response = call(api, "get", "points", customer_id="6001")

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- identity --------------------------------------------------------------------------------


def test_a_logged_in_shopper_not_yet_known_gets_a_bare_customer_row(api, merchant, foreign):
    first = call(api, "get", "points", customer_id="8123")
    second = call(api, "get", "points", customer_id="8123")

    assert first.status_code == second.status_code == 200
    assert first.json()["points_balance"] == 0
    created = Customer.objects.get(merchant=merchant, shopify_customer_id="8123")
    assert (created.email, created.first_name, created.last_name) == ("", "", "")
    assert Customer.objects.filter(shopify_customer_id="8123").count() == 1
    assert AuditLog.objects.filter(merchant=merchant, action="customer_created", target_id=created.pk).count() == 1


def test_identity_comes_only_from_the_signed_customer_id(api, merchant, shopper, reward, foreign):
    impostor = foreign["customer"]
    victim_before = ledger_state()

    points = call(
        api, "get", "points", customer_id="6001", customer=impostor.pk, shopify_customer_id=impostor.shopify_customer_id
    )
    redeem = call(
        api,
        "post",
        "points/redeem",
        customer_id="6001",
        data={"reward_id": reward.pk, "customer_id": impostor.pk},
    )

    assert points.json()["points_balance"] == 1000
    assert redeem.status_code == 400 and "customer_id" in redeem.json()["error"]["fields"]
    assert ledger_state() == victim_before


def test_anonymous_visitors_see_no_balance(api, merchant, shopper, reward, foreign):
    before = ledger_state()

    points = call(api, "get", "points")
    link = call(api, "get", "referral-link")
    redeem = call(api, "post", "points/redeem", data={"reward_id": reward.pk})
    rewards = call(api, "get", "rewards")

    for response in (points, link, redeem):
        assert response.status_code == 401
        assert response.json()["error"] == {
            "code": "login_required",
            "message": "Log in to see your points and rewards.",
        }
    assert rewards.status_code == 200
    assert [r["can_afford"] for r in rewards.json()["rewards"]] == [None]
    assert "balance" not in rewards.content.decode()
    assert ledger_state() == before


# --- B2: shop A's signed requests with shop B's ids ---------------------------------------------


def _proxy_routes():
    routes = []

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                routes.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns, "/")
    return [route for route in routes if route.startswith("/proxy/")]


def test_every_proxy_route_is_walked():
    routes = _proxy_routes()
    assert "/proxy/v1/api/points/redeem" in routes
    for route in routes:
        for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
            assert name in {"code"}, f"add {name} to the proxy B2 walk"


@pytest.mark.parametrize("as_shopper", ["6001", None, "foreign-shopify-id"], ids=["shopper", "anonymous", "b-id"])
def test_shop_a_never_reads_or_redeems_shop_b_data(api, merchant, shopper, reward, foreign, as_shopper):
    customer_id = foreign["customer"].shopify_customer_id if as_shopper == "foreign-shopify-id" else as_shopper
    b_balance = Customer.objects.get(pk=foreign["customer"].pk).points_balance
    b_entries = PointsTransaction.objects.filter(merchant=foreign["merchant"]).count()

    for route in _proxy_routes():
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: foreign[m.group(1)], route).removeprefix("/proxy/v1/api/")
        for method in ("get", "post"):
            response = call(api, method, path, customer_id=customer_id, data={"reward_id": foreign["reward"].pk})
            if response.status_code == 405:
                continue
            assert response.status_code in (200, 400, 401, 404), (method, route, response.status_code)
            if "<code>" in route or method == "post":
                # Refused: unknown here (404), not this shopper's (401) or not valid for it (400).
                assert response.status_code in (400, 401, 404), (method, route, response.content)
            assert foreign_leaks(response, foreign) == [], (method, route)

    assert Customer.objects.get(pk=foreign["customer"].pk).points_balance == b_balance
    assert PointsTransaction.objects.filter(merchant=foreign["merchant"]).count() == b_entries


# --- points and rewards ----------------------------------------------------------------------


def test_points_show_the_tier_in_the_requested_locale(api, merchant, shopper, foreign):
    VipTierFactory(merchant=merchant, min_lifetime_points=500, name={"en": "Silver", "de": "Silber"})
    VipTierFactory(merchant=merchant, min_lifetime_points=2500, name={"en": "Gold", "de": "Gold-DE"})
    points_earn(merchant=merchant, customer=shopper, points=1, idempotency_key="tier-up")

    german = call(api, "get", "points", customer_id="6001", locale="de").json()
    english = call(api, "get", "points", customer_id="6001", headers={"HTTP_ACCEPT_LANGUAGE": "en-GB"}).json()

    assert german["vip_tier"]["name"] == "Silber" and english["vip_tier"]["name"] == "Silver"
    assert german["next_tier"]["name"] == "Gold-DE" and german["next_tier"]["points_needed"] == 2500 - 1001


def test_points_take_the_latest_change_from_the_stream(api, merchant, shopper, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        entry = points_earn(merchant=merchant, customer=shopper, points=50, idempotency_key="e2").transaction
    stream = core_redis.get_redis().xrevrange(f"{merchant.pk}:points:{shopper.pk}", count=1)
    assert stream, "the earn was appended to the stream"

    body = call(api, "get", "points", customer_id="6001").json()

    assert body["last_transaction_id"] == entry.pk and body["points_balance"] == 1050


def test_a_stream_left_behind_by_an_outage_never_shows_an_older_state(api, merchant, shopper):
    # The stream's newest entry predates a change committed while Redis was down.
    stream_append(
        merchant_id=merchant.pk,
        key=f"points:{shopper.pk}",
        data={"customer_id": shopper.pk, "points_balance": 5, "transaction_id": "ptx_stale"},
    )
    newest = PointsTransaction.objects.get(customer=shopper)

    body = call(api, "get", "points", customer_id="6001").json()

    assert body["points_balance"] == 1000 and body["last_transaction_id"] == newest.pk


def test_rewards_are_localized_and_say_what_the_shopper_can_afford(api, merchant, shopper, reward, foreign):
    RewardFactory(merchant=merchant, points_cost=5000, name={"en": "Free bag"})
    RewardFactory(merchant=merchant, points_cost=10, name={"en": "Retired"}, is_active=False)

    response = call(api, "get", "rewards", customer_id="6001", locale="fr")

    rewards = response.json()["rewards"]
    assert [(r["name"], r["can_afford"]) for r in rewards] == [("5 $ de réduction", True), ("Free bag", False)]
    assert foreign_leaks(response, foreign) == []


# --- redemption (C2, C3) ---------------------------------------------------------------------


def test_redeeming_a_reward_debits_the_ledger_once(api, merchant, shopper, reward, foreign, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    response = call(api, "post", "points/redeem", customer_id="6001", data={"reward_id": reward.pk})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["points_balance"] == 700 and body["redemption"]["points"] == 300
    entry = RewardRedemption.objects.get(pk=body["redemption"]["id"]).transaction
    assert entry.customer_id == shopper.pk and entry.reward_id == reward.pk
    assert entry.metadata == {"source": "storefront"} and entry.actor_id is None
    assert AuditLog.objects.filter(merchant=merchant, action="points_redeem", target_id=entry.pk).exists()
    assert foreign_leaks(response, foreign) == []


def test_redeeming_without_enough_points_is_422_in_the_shoppers_language(api, merchant, shopper, foreign):
    expensive = RewardFactory(merchant=merchant, points_cost=1001)
    before = ledger_state()

    response = call(
        api,
        "post",
        "points/redeem",
        customer_id="6001",
        locale="fr",
        data={"reward_id": expensive.pk},
        headers={"HTTP_IDEMPOTENCY_KEY": "too-much"},
    )

    assert response.status_code == 422
    assert response.json()["error"] == {"code": "insufficient_points", "message": "Le client n'a pas assez de points."}
    assert ledger_state() == before


def test_another_shops_or_an_inactive_reward_is_404(api, merchant, shopper, foreign):
    retired = RewardFactory(merchant=merchant, is_active=False)
    before = ledger_state()

    for reward_id in (foreign["reward"].pk, retired.pk, "rwd_nonexistent"):
        response = call(api, "post", "points/redeem", customer_id="6001", locale="es", data={"reward_id": reward_id})
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "No se encontró la recompensa."
    assert ledger_state() == before


def test_an_idempotency_key_replays_the_answer(api, merchant, shopper, reward, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    headers = {"HTTP_IDEMPOTENCY_KEY": "redeem-1"}

    first = call(api, "post", "points/redeem", customer_id="6001", data={"reward_id": reward.pk}, headers=headers)
    again = call(api, "post", "points/redeem", customer_id="6001", data={"reward_id": reward.pk}, headers=headers)
    other = RewardFactory(merchant=merchant, points_cost=100)
    conflict = call(api, "post", "points/redeem", customer_id="6001", data={"reward_id": other.pk}, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert conflict.status_code == 409
    assert PointsTransaction.objects.filter(customer=shopper, kind="redeem").count() == 1
    assert Customer.objects.get(pk=shopper.pk).points_balance == 700


def test_two_shoppers_with_the_same_key_never_share_an_answer(api, merchant, shopper, reward, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    other = CustomerFactory(merchant=merchant, shopify_customer_id="6002")
    points_earn(merchant=merchant, customer=other, points=400, idempotency_key="seed-other")
    headers = {"HTTP_IDEMPOTENCY_KEY": "same-key"}

    mine = call(api, "post", "points/redeem", customer_id="6001", data={"reward_id": reward.pk}, headers=headers)
    theirs = call(api, "post", "points/redeem", customer_id="6002", data={"reward_id": reward.pk}, headers=headers)

    assert mine.status_code == theirs.status_code == 201
    assert (mine.json()["points_balance"], theirs.json()["points_balance"]) == (700, 100)
    assert mine.json()["redemption"]["id"] != theirs.json()["redemption"]["id"]


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_redemptions_never_overdraw(merchant, other_merchant, settings, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    settings.PROXY_RATE_LIMITS = {**settings.PROXY_RATE_LIMITS, "redeem": "1000/60"}
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="7777")
    points_earn(merchant=merchant, customer=customer, points=1000, idempotency_key="seed-concurrent")
    reward = RewardFactory(merchant=merchant, points_cost=100)
    statuses = []
    barrier = threading.Barrier(50, timeout=30)

    def redeem(n):
        try:
            barrier.wait()
            response = call(
                APIClient(),
                "post",
                "points/redeem",
                customer_id="7777",
                data={"reward_id": reward.pk},
                headers={"HTTP_IDEMPOTENCY_KEY": f"concurrent-{n}"},
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    customer.refresh_from_db()
    assert sorted(statuses) == [201] * 10 + [422] * 40
    assert customer.points_balance == 0
    assert PointsTransaction.objects.filter(customer=customer, kind="redeem").count() == 10
    assert IdempotencyRecord.objects.filter(merchant=merchant).count() == 10
    assert all(c.points_balance == 0 for c in Customer.objects.filter(merchant=other_merchant["merchant"]))


# --- rate limits (D3) and Redis down (E5) -----------------------------------------------------


# Hour-long windows in these tests: a window boundary cannot fall between their few requests.


def test_a_shopper_over_the_limit_gets_429_with_retry_after(api, merchant, shopper, foreign, settings):
    settings.PROXY_RATE_LIMITS = {**settings.PROXY_RATE_LIMITS, "storefront": "3/3600"}
    other = CustomerFactory(merchant=merchant, shopify_customer_id="6002")
    b_shopper = foreign["customer"].shopify_customer_id

    answers = [call(api, "get", "points", customer_id="6001").status_code for _ in range(3)]
    limited = call(api, "get", "points", customer_id="6001", locale="de")

    assert answers == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 3601
    assert limited.json()["error"] == {
        "code": "rate_limited",
        "message": "Zu viele Anfragen. Versuchen Sie es gleich noch einmal.",
    }
    # Another shopper of the same shop, and shop B's shopper, have buckets of their own.
    assert call(api, "get", "points", customer_id=other.shopify_customer_id).status_code == 200
    assert call(api, "get", "points", shop=OTHER_SHOP, customer_id=b_shopper).status_code == 200


def test_anonymous_visitors_are_limited_per_address(api, merchant, settings):
    settings.PROXY_RATE_LIMITS = {**settings.PROXY_RATE_LIMITS, "storefront": "2/3600"}
    first = {"HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.0.0.1"}
    second = {"HTTP_X_FORWARDED_FOR": "198.51.100.9"}

    answers = [call(api, "get", "rewards", headers=first).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert call(api, "get", "rewards", headers=second).status_code == 200
    keys = core_redis.get_redis().keys("ratelimit:*")
    assert keys and not any("203.0.113.7" in key for key in keys)  # addresses are hashed


def test_a_shop_has_a_ceiling_across_all_its_shoppers(api, merchant, foreign, settings):
    settings.PROXY_RATE_LIMIT_SHOP = "4/3600"

    answers = [call(api, "get", "points", customer_id=str(9000 + n)).status_code for n in range(5)]

    assert answers == [200, 200, 200, 200, 429]
    assert call(api, "get", "points", shop=OTHER_SHOP, customer_id="9100").status_code == 200


def test_referral_code_lookups_are_limited(api, merchant, foreign, settings):
    settings.PROXY_RATE_LIMITS = {**settings.PROXY_RATE_LIMITS, "referral_lookup": "3/3600"}

    answers = [call(api, "get", f"referral/GUESS{n:04d}").status_code for n in range(4)]

    assert answers == [404, 404, 404, 429]


def test_a_counter_resets_with_its_window_and_rates_are_parsed_strictly(merchant, other_merchant):
    from apps.shopify.ratelimit import Counter, Rate, rate_limit_hit

    counters = [Counter(bucket="storefront", who="cus_x", rate=Rate.parse("2/10"))]
    start = 1_000_000_000.0  # a window boundary

    hits = [rate_limit_hit(merchant_id=merchant.pk, counters=counters, now=start + n) for n in range(3)]
    other_shop = rate_limit_hit(merchant_id=other_merchant["merchant"].pk, counters=counters, now=start + 3)
    next_window = rate_limit_hit(merchant_id=merchant.pk, counters=counters, now=start + 10)

    assert hits == [None, None, 8.0] and other_shop is None and next_window is None
    for bad in ("", "10", "0/60", "ten/60", "5/-1"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


def test_with_redis_down_reads_are_served_from_postgresql(api, merchant, shopper, reward, redis_down):
    points = call(api, "get", "points", customer_id="6001")
    rewards = call(api, "get", "rewards", customer_id="6001")

    assert points.status_code == 200 and rewards.status_code == 200
    assert points.json()["points_balance"] == 1000
    assert points.json()["last_transaction_id"] == PointsTransaction.objects.get(customer=shopper).pk


def test_with_redis_down_redemptions_fail_closed(api, merchant, shopper, reward, redis_down):
    before = ledger_state()

    response = call(
        api,
        "post",
        "points/redeem",
        customer_id="6001",
        locale="ja",
        data={"reward_id": reward.pk},
        headers={"HTTP_IDEMPOTENCY_KEY": "while-down"},
    )

    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "service_unavailable",
        "message": "サービスは一時的に利用できません。しばらくしてからもう一度お試しください。",
    }
    assert ledger_state() == before


# --- referral links (D6) ---------------------------------------------------------------------

CODE_FORMAT = re.compile(r"^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}$")


def test_the_referral_link_is_created_once_with_a_random_code(api, merchant, shopper, foreign):
    first = call(api, "get", "referral-link", customer_id="6001")
    second = call(api, "get", "referral-link", customer_id="6001")

    assert first.status_code == second.status_code == 200
    code = first.json()["referral_link"]["code"]
    assert CODE_FORMAT.match(code)
    assert second.json()["referral_link"]["code"] == code
    assert first.json()["referral_link"]["url"] == f"https://{SHOP}/?ref={code}"
    link = ReferralLink.objects.get(customer=shopper)
    assert link.merchant_id == merchant.pk and link.code == code
    assert AuditLog.objects.filter(merchant=merchant, action="referral_link_created", target_id=link.pk).count() == 1
    assert foreign_leaks(first, foreign) == []


def test_referral_codes_are_unique_and_retried_on_a_collision(merchant, shopper, foreign):
    from apps.core.services import referral_code_new

    codes = {referral_code_new() for _ in range(5000)}
    assert len(codes) == 5000 and all(CODE_FORMAT.match(code) for code in codes)

    drawn = iter([foreign["code"], "FRESHCODE2"])  # the first draw collides with shop B's code
    link = referral_link_get_or_create(merchant=merchant, customer=shopper, generate_code=lambda: next(drawn))

    assert link.code == "FRESHCODE2"
    assert ReferralLink.objects.get(code=foreign["code"]).merchant_id == foreign["merchant"].pk


def test_a_referral_code_resolves_to_the_offer_without_the_advocate(api, merchant, shopper, foreign):
    merchant.program_settings.referral_friend_points = 200
    merchant.program_settings.referral_advocate_points = 300
    merchant.program_settings.save()
    link = referral_link_get_or_create(merchant=merchant, customer=shopper)

    for customer_id in (None, "6002"):
        response = call(api, "get", f"referral/{link.code}", customer_id=customer_id)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["referral"] == {"code": link.code, "friend_points": 200, "advocate_points": 300}
        text = response.content.decode()
        for personal in (shopper.pk, shopper.email, shopper.first_name, shopper.shopify_customer_id):
            assert personal not in text
    assert call(api, "get", f"referral/{link.code.lower()}").status_code == 200


def test_self_referral_is_refused(api, merchant, shopper):
    link = referral_link_get_or_create(merchant=merchant, customer=shopper)

    response = call(api, "get", f"referral/{link.code}", customer_id="6001")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "self_referral"


def test_unknown_inactive_or_foreign_codes_are_404(api, merchant, shopper, foreign):
    link = referral_link_get_or_create(merchant=merchant, customer=shopper)
    ReferralLink.objects.filter(pk=link.pk).update(is_active=False)

    for code in (link.code, foreign["code"], "NOPE2345XY", "bad%20code!"):
        response = call(api, "get", f"referral/{code}")
        assert response.status_code == 404, code
        assert foreign_leaks(response, foreign) == []
