"""The merchant dashboard of the embedded admin: identity, tenancy, framing, locale direction."""

import pytest
from django.test import override_settings

from apps.core.services import points_adjust
from apps.core.tenancy import merchant_scope
from apps.shopify.auth import DEMO_SHOP_DOMAIN
from tests.factories import CustomerFactory, MerchantFactory, StaffMemberFactory, VipTierFactory
from tests.shopify_helpers import session_token

pytestmark = pytest.mark.django_db

DEMO_MODE_ON = override_settings(DEBUG=True, DEMO_MODE=True)


@pytest.fixture
def demo_merchant():
    merchant = MerchantFactory(shop_domain=DEMO_SHOP_DOMAIN, name="LoyalNest Demo Store")
    CustomerFactory.create_batch(2, merchant=merchant, points_balance=150, lifetime_points=150)
    return merchant


@pytest.fixture
def shop(merchant):
    """Alpha Pets with two tiers, three customers and a few ledger entries."""
    silver = VipTierFactory(merchant=merchant, name={"en": "Silver", "de": "Silber"}, min_lifetime_points=500)
    VipTierFactory(merchant=merchant, name={"en": "Gold", "de": "Gold"}, min_lifetime_points=2000)
    alice = CustomerFactory(
        merchant=merchant, first_name="Alice", last_name="Archer", vip_tier=silver, lifetime_points=600
    )
    CustomerFactory(merchant=merchant, first_name="Bob", last_name="Baker", vip_tier=silver, lifetime_points=700)
    CustomerFactory(merchant=merchant, first_name="Cleo", last_name="Cole")
    with merchant_scope(merchant):
        points_adjust(merchant=merchant, customer=alice, points=1200, reason="Welcome gift", idempotency_key="t-1")
        points_adjust(merchant=merchant, customer=alice, points=-200, reason="Correction", idempotency_key="t-2")
    return merchant


@pytest.fixture
def rival(other_merchant):
    """Beta Gadgets, whose name, tier and customers must never show on Alpha's page."""
    merchant = other_merchant["merchant"]
    VipTierFactory(merchant=merchant, name={"en": "Platinum Rival"}, min_lifetime_points=100)
    customer = CustomerFactory(merchant=merchant, first_name="Zed", last_name="Rivalsky")
    with merchant_scope(merchant):
        points_adjust(merchant=merchant, customer=customer, points=777, reason="Rival bonus", idempotency_key="r-1")
    return merchant


def open_dashboard(client, shop_domain=None, **params):
    if shop_domain is not None:
        params["id_token"] = session_token(shop_domain)
    return client.get("/app/", params)


@DEMO_MODE_ON
def test_demo_mode_opens_the_demo_shop_without_shopify(client, demo_merchant, rival):
    response = client.get("/app/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "LoyalNest Demo Store" in page
    assert DEMO_SHOP_DOMAIN in page
    assert 'data-metric="customer-count">2<' in page
    assert 'data-metric="points-outstanding">300<' in page
    assert "Beta Gadgets" not in page and "Rivalsky" not in page


def test_without_demo_mode_the_demo_shop_needs_a_token(client, demo_merchant):
    response = client.get("/app/")

    assert response.status_code == 401
    assert "LoyalNest Demo Store" not in response.content.decode()


@pytest.mark.parametrize("demo", [False, True])
def test_a_valid_session_token_renders_that_shop_only(client, shop, rival, demo_merchant, demo):
    with override_settings(DEBUG=demo, DEMO_MODE=demo):
        response = open_dashboard(client, "alpha-pets.myshopify.com")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Alpha Pets</h1>" in page
    assert 'data-metric="customer-count">3<' in page
    assert 'data-metric="points-outstanding">1,000<' in page
    assert "Silver" in page and "Gold" in page
    assert "Welcome gift" in page and "Correction" in page and "Alice Archer" in page
    for foreign in ("Beta Gadgets", "beta-gadgets", "Platinum Rival", "Rivalsky", "Rival bonus", "Demo Store"):
        assert foreign not in page


def test_customers_per_tier_are_counted(client, shop):
    response = open_dashboard(client, "alpha-pets.myshopify.com")

    tiers = response.context["tiers"]
    assert [(t.name, t.customer_count) for t in tiers] == [("", 1), ("Silver", 2), ("Gold", 0)]


def test_ledger_shows_the_ten_latest_entries_newest_first(client, shop):
    alice = shop.customers.get(first_name="Alice")
    with merchant_scope(shop):
        for n in range(12):
            points_adjust(merchant=shop, customer=alice, points=n + 1, reason=f"Batch {n}", idempotency_key=f"b-{n}")

    response = open_dashboard(client, "alpha-pets.myshopify.com")

    reasons = [entry.reason for entry in response.context["transactions"]]
    assert reasons == [f"Batch {n}" for n in range(11, 1, -1)]


BAD_TOKENS = {
    "missing": lambda: None,
    "empty": lambda: "",
    "not a JWT": lambda: "not-a-jwt",
    "wrong secret": lambda: session_token("alpha-pets.myshopify.com", secret="wrong-secret-0123456789-0123456789"),
    "expired": lambda: session_token("alpha-pets.myshopify.com", exp=1_000_000, nbf=999_000),
    "other app": lambda: session_token("alpha-pets.myshopify.com", audience="another-app"),
    "dest is not iss": lambda: session_token("alpha-pets.myshopify.com", dest="https://beta-gadgets.myshopify.com"),
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_missing_or_invalid_token_is_401(client, shop, rival, case):
    token = BAD_TOKENS[case]()
    params = {} if token is None else {"id_token": token}

    response = client.get("/app/", params)

    assert response.status_code == 401
    assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert "Alpha Pets" not in response.content.decode() and "Beta Gadgets" not in response.content.decode()


@DEMO_MODE_ON
def test_an_invalid_token_is_401_even_in_demo_mode(client, demo_merchant):
    response = client.get("/app/", {"id_token": "not-a-jwt"})

    assert response.status_code == 401
    assert "LoyalNest Demo Store" not in response.content.decode()


def test_a_token_shopify_refuses_to_exchange_is_401(client, shop, fake_shopify):
    # A valid token of a shop without a usable installation installs it (tests/shopify/
    # test_install.py) unless Shopify refuses the exchange.
    MerchantFactory(shop_domain="gone-shop.myshopify.com", name="Gone Shop", is_installed=False)
    fake_shopify.not_installed.update({"nobody.myshopify.com", "gone-shop.myshopify.com"})

    for domain in ("nobody.myshopify.com", "gone-shop.myshopify.com"):
        response = open_dashboard(client, domain)
        assert response.status_code == 401
        assert "Gone Shop" not in response.content.decode()


def test_a_deactivated_staff_member_is_403(client, shop):
    StaffMemberFactory(merchant=shop, shopify_user_id="90001", is_active=False)

    response = open_dashboard(client, "alpha-pets.myshopify.com")

    assert response.status_code == 403
    assert "Alpha Pets" not in response.content.decode()


def test_the_page_may_be_framed_by_its_own_shop_only(client, shop, rival):
    alpha = open_dashboard(client, "alpha-pets.myshopify.com")
    beta = open_dashboard(client, "beta-gadgets.myshopify.com")

    assert alpha["Content-Security-Policy"] == (
        "frame-ancestors https://alpha-pets.myshopify.com https://admin.shopify.com"
    )
    assert beta["Content-Security-Policy"] == (
        "frame-ancestors https://beta-gadgets.myshopify.com https://admin.shopify.com"
    )
    assert "Beta Gadgets" in beta.content.decode() and "Alpha Pets" not in beta.content.decode()
    for response in (alpha, beta):
        assert "X-Frame-Options" not in response
        assert "no-store" in response["Cache-Control"]


def test_the_401_page_is_framed_only_by_a_shop_shaped_parameter(client, shop):
    framed = client.get("/app/", {"shop": "alpha-pets.myshopify.com", "id_token": "not-a-jwt"})
    hostile = client.get("/app/", {"shop": "evil.example.com https://evil.example.com", "id_token": "not-a-jwt"})

    assert framed.status_code == hostile.status_code == 401
    assert framed["Content-Security-Policy"] == (
        "frame-ancestors https://alpha-pets.myshopify.com https://admin.shopify.com"
    )
    assert hostile["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_django_admin_stays_unframeable(client):
    response = client.get("/admin/login/")

    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("locale", "direction", "lang"),
    [("ar", "rtl", "ar"), ("he", "rtl", "he"), ("fa", "rtl", "fa"), ("de", "ltr", "de"), ("en", "ltr", "en")],
)
def test_text_direction_follows_shopifys_locale(client, shop, locale, direction, lang):
    response = open_dashboard(client, "alpha-pets.myshopify.com", locale=locale)

    assert response.status_code == 200
    assert f'<html lang="{lang}" dir="{direction}">' in response.content.decode()


def test_regional_locales_are_normalized(client, shop):
    german = open_dashboard(client, "alpha-pets.myshopify.com", locale="de-DE")
    persian = open_dashboard(client, "alpha-pets.myshopify.com", locale="fa-IR")
    chinese = open_dashboard(client, "alpha-pets.myshopify.com", locale="zh-CN")

    assert '<html lang="de" dir="ltr">' in german.content.decode()
    assert "Silber" in german.content.decode()
    assert german["Content-Language"] == "de"
    assert '<html lang="fa" dir="rtl">' in persian.content.decode()
    assert '<html lang="zh-CN" dir="ltr">' in chinese.content.decode()


def test_the_401_page_speaks_the_requested_direction(client):
    response = client.get("/app/", {"locale": "he"})

    assert response.status_code == 401
    assert '<html lang="he" dir="rtl">' in response.content.decode()


def test_shopify_app_bridge_polaris_and_own_css_are_loaded(client, shop):
    page = open_dashboard(client, "alpha-pets.myshopify.com").content.decode()

    assert '<meta name="shopify-api-key" content="test-client-id">' in page
    assert page.index("https://cdn.shopify.com/shopifycloud/app-bridge.js") < page.index(
        "https://cdn.shopify.com/shopifycloud/polaris.js"
    )
    assert "/static/css/app.css" in page


def test_routed_feature_pages_are_linked_and_unrouted_ones_listed_as_coming(client, shop, monkeypatch):
    from apps.shopify import views

    monkeypatch.setattr(views, "FEATURES", [*views.FEATURES, ("future-feature", "Time travel")])

    page = open_dashboard(client, "alpha-pets.myshopify.com").content.decode()

    for item in views.feature_navigation():
        if item["slug"] == "future-feature":
            assert not item["available"]
        elif item["available"]:
            assert f'href="/app/{item["slug"]}/' in page, item["slug"]
    assert "Time travel (coming in a later release)" in page
    assert 'href="/app/future-feature/' not in page


def test_post_is_not_allowed(client, shop):
    response = client.post("/app/?id_token=" + session_token("alpha-pets.myshopify.com"))

    assert response.status_code == 405


def test_every_embedded_page_runs_inside_its_shops_scope(client, shop, rival):
    """Test bodies run unscoped and the test client shares their thread; here scoping is on (with
    no merchant), as in a real request, so a page reading tenant rows outside its shop's scope
    fails this test instead of failing in production."""
    from django_scopes import scope

    from apps.shopify.views import feature_navigation

    paths = ["/app/"] + [item["path"] for item in feature_navigation() if item["available"]]
    token = session_token("alpha-pets.myshopify.com")
    with scope():
        statuses = {path: client.get(path, {"id_token": token}).status_code for path in paths}

    assert statuses == dict.fromkeys(paths, 200)
