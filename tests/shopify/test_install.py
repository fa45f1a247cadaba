"""Managed installation: a verified session token of a shop without a usable offline token is
exchanged for an expiring offline token; the embedded shell bounces for fresh session tokens."""

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import tracking
from apps.core.models import AuditLog, Merchant, ProgramSettings, StaffMember
from apps.shopify.models import ShopifyInstallation
from apps.shopify.tokens import access_token_for, installation_get, installation_revoke
from tests.factories import MerchantFactory
from tests.fakes.http import FakeServer
from tests.shopify_helpers import session_token, shopify_connect

pytestmark = pytest.mark.django_db

NEW_SHOP = "gamma-garden.myshopify.com"


def bearer(shop, **claims):
    return {"HTTP_AUTHORIZATION": f"Bearer {session_token(shop, **claims)}"}


def exchanges(fake):
    return [
        r
        for r in fake.server.requests
        if r.path == "/admin/oauth/access_token"
        and r.json().get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange"
    ]


def stored_columns(merchant):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM shopify_installations WHERE merchant_id = %s", [merchant.pk]
        )
        return cursor.fetchone()


@pytest.fixture
def beta(other_merchant, fake_shopify):
    """The second merchant, installed with real fake-issued tokens that must never change."""
    merchant = other_merchant["merchant"]
    access, refresh = shopify_connect(fake_shopify, merchant)
    return merchant, access, refresh


def assert_untouched(beta):
    merchant, access, refresh = beta
    merchant.refresh_from_db()
    installation = installation_get(merchant=merchant)
    assert merchant.is_installed is True
    assert (installation.access_token, installation.refresh_token) == (access, refresh)
    assert installation.needs_reauth is False


def test_the_first_session_token_installs_the_shop(fake_shopify, beta, settings, django_capture_on_commit_callbacks):
    fake_shopify.shop(NEW_SHOP).data["details"] = {
        "name": "Gamma Garden",
        "currencyCode": "EUR",
        "ianaTimezone": "Europe/Berlin",
        "primaryLocale": "de",
        "plan": {"publicDisplayName": "Shopify Plus", "partnerDevelopment": False, "shopifyPlus": True},
    }
    with FakeServer() as posthog:
        settings.POSTHOG_API_KEY = "phc_test"
        settings.POSTHOG_HOST = posthog.url
        with django_capture_on_commit_callbacks(execute=True):
            response = APIClient().get("/v1/api/me", **bearer(NEW_SHOP, user_id="555"))
        tracking.flush()

    assert response.status_code == 200, response.content
    merchant = Merchant.objects.get(shop_domain=NEW_SHOP)
    assert (merchant.name, merchant.currency, merchant.timezone, merchant.primary_locale) == (
        "Gamma Garden",
        "EUR",
        "Europe/Berlin",
        "de",
    )
    assert merchant.is_installed is True and merchant.installed_at is not None and merchant.is_plus
    assert ProgramSettings.objects.filter(merchant=merchant).count() == 1
    assert StaffMember.objects.get(merchant=merchant, shopify_user_id="555").role == "owner"
    # Expiring offline token: a 1-hour access token and a 90-day refresh token, both encrypted.
    installation = installation_get(merchant=merchant)
    assert installation.access_token in fake_shopify.shop(NEW_SHOP).access_tokens
    assert installation.refresh_token in fake_shopify.shop(NEW_SHOP).refresh_tokens
    assert timedelta(minutes=55) < installation.access_token_expires_at - timezone.now() <= timedelta(hours=1)
    assert installation.refresh_token_expires_at - timezone.now() > timedelta(days=89)
    assert installation.shop_gid == fake_shopify.shop(NEW_SHOP).gid
    assert installation.scopes == "read_customers,write_customers,read_orders"
    stored_access, stored_refresh = stored_columns(merchant)
    assert stored_access.startswith("enc1:") and installation.access_token not in stored_access
    assert stored_refresh.startswith("enc1:") and installation.refresh_token not in stored_refresh
    # The exchange asked for an expiring offline token.
    (request,) = exchanges(fake_shopify)
    body = request.json()
    assert body["requested_token_type"] == "urn:shopify:params:oauth:token-type:offline-access-token"
    assert body["expiring"] == 1
    assert AuditLog.objects.filter(merchant=merchant, action="app_installed").count() == 1
    events = [event for r in posthog.requests for event in r.json()["batch"]]
    assert [(e["event"], e["distinct_id"]) for e in events] == [("app_installed", merchant.pk)]
    assert access_token_for(merchant=merchant) == installation.access_token
    assert_untouched(beta)


def test_an_installed_shop_costs_no_call_to_shopify(fake_shopify, merchant, owner, beta):
    api = APIClient()
    for _ in range(3):
        assert api.get("/v1/api/me", **bearer(merchant.shop_domain, user_id=owner.shopify_user_id)).status_code == 200

    assert fake_shopify.server.requests == []


def test_a_forged_session_token_is_401_and_installs_nothing(fake_shopify, beta):
    forged = session_token(NEW_SHOP, secret="not-the-client-secret-0123456789-0123456789")
    api_response = APIClient().get("/v1/api/me", HTTP_AUTHORIZATION=f"Bearer {forged}")
    page = Client().get("/app/", {"id_token": forged, "shop": NEW_SHOP})

    assert api_response.status_code == page.status_code == 401
    assert api_response["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert page["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert not Merchant.objects.filter(shop_domain=NEW_SHOP).exists()
    assert fake_shopify.server.requests == []
    assert_untouched(beta)


def test_shopify_refusing_the_exchange_is_401_and_installs_nothing(fake_shopify, beta):
    fake_shopify.not_installed.add(NEW_SHOP)

    response = APIClient().get("/v1/api/me", **bearer(NEW_SHOP))

    assert response.status_code == 401
    assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert not Merchant.objects.filter(shop_domain=NEW_SHOP).exists()
    assert_untouched(beta)


def test_shopify_down_during_the_exchange_installs_nothing(fake_shopify, beta):
    fake_shopify.fail_next(6, status=503)

    api_response = APIClient().get("/v1/api/me", **bearer(NEW_SHOP))
    page = Client().get("/app/", {"id_token": session_token(NEW_SHOP), "shop": NEW_SHOP})

    assert api_response.status_code == 502
    assert api_response.json()["error"]["code"] == "shopify_error"
    assert page.status_code == 503
    assert page["Content-Security-Policy"] == f"frame-ancestors https://{NEW_SHOP} https://admin.shopify.com"
    assert not Merchant.objects.filter(shop_domain=NEW_SHOP).exists()
    assert_untouched(beta)


def test_the_embedded_page_installs_and_renders_the_new_shop(fake_shopify, beta):
    fake_shopify.shop(NEW_SHOP).data["details"] = {"name": "Gamma Garden", "primaryLocale": "fr"}

    response = Client().get("/app/", {"id_token": session_token(NEW_SHOP), "shop": NEW_SHOP})

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Gamma Garden</h1>" in page
    assert '<html lang="fr" dir="ltr">' in page  # the shop's primary locale, Shopify sent none
    assert response["Content-Security-Policy"] == f"frame-ancestors https://{NEW_SHOP} https://admin.shopify.com"
    assert "Beta Gadgets" not in page
    assert_untouched(beta)


def test_reauthorisation_re_exchanges_and_clears_needs_reauth(fake_shopify, merchant, owner, beta):
    shopify_connect(fake_shopify, merchant, expires_in=timedelta(seconds=-1))
    fake_shopify.shop(merchant.shop_domain).refresh_tokens.clear()  # Shopify revoked the grant
    with pytest.raises(Exception, match="shopify_reauth_required"):
        access_token_for(merchant=merchant)
    assert installation_get(merchant=merchant).needs_reauth is True

    response = APIClient().get("/v1/api/me", **bearer(merchant.shop_domain, user_id=owner.shopify_user_id))

    assert response.status_code == 200
    installation = installation_get(merchant=merchant)
    assert installation.needs_reauth is False and installation.reauth_reason == ""
    assert len(exchanges(fake_shopify)) == 1
    assert access_token_for(merchant=merchant) == installation.access_token
    assert AuditLog.objects.filter(merchant=merchant, action="shopify_reauthorized").count() == 1
    assert not AuditLog.objects.filter(merchant=merchant, action="app_installed").exists()
    assert_untouched(beta)


def test_an_uninstalled_shop_reinstalls_with_its_data(fake_shopify, merchant, owner, beta):
    installation_revoke(merchant=merchant)
    merchant.refresh_from_db()
    assert merchant.is_installed is False

    response = APIClient().get("/v1/api/me", **bearer(merchant.shop_domain, user_id=owner.shopify_user_id))

    assert response.status_code == 200
    merchant.refresh_from_db()
    assert merchant.is_installed is True and merchant.uninstalled_at is None
    assert Merchant.objects.filter(shop_domain=merchant.shop_domain).count() == 1
    assert response.json()["staff"]["role"] == "owner"  # the same staff row, kept across the reinstall
    installed = AuditLog.objects.get(merchant=merchant, action="app_installed")
    assert installed.metadata["reinstall"] is True
    assert installation_get(merchant=merchant).access_token in fake_shopify.shop(merchant.shop_domain).access_tokens
    assert_untouched(beta)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_exchange_once(fake_shopify):
    beta = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    beta_access, beta_refresh = shopify_connect(fake_shopify, beta)
    respond = fake_shopify.server.respond

    def slow_token_endpoint(request):
        if request.path == "/admin/oauth/access_token":
            import time

            time.sleep(0.4)  # the other requests arrive while the first exchange is in flight
        return respond(request)

    fake_shopify.server.respond = slow_token_endpoint
    barrier = threading.Barrier(3)
    statuses = []

    def first_open(user_id):
        try:
            barrier.wait()
            statuses.append(APIClient().get("/v1/api/me", **bearer(NEW_SHOP, user_id=user_id)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_open, args=(str(700 + n),)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200, 200, 200]
    assert len(exchanges(fake_shopify)) == 1
    assert Merchant.objects.filter(shop_domain=NEW_SHOP).count() == 1
    merchant = Merchant.objects.get(shop_domain=NEW_SHOP)
    assert AuditLog.objects.filter(merchant=merchant, action="app_installed").count() == 1
    assert ShopifyInstallation.objects.filter(merchant=merchant).count() == 1
    installation = installation_get(merchant=beta)
    assert (installation.access_token, installation.refresh_token) == (beta_access, beta_refresh)


# --- the embedded shell: bounce for a fresh session token ----------------------------------


def test_a_document_request_without_id_token_bounces_for_a_fresh_one(client, merchant):
    response = client.get(
        "/app/", {"shop": merchant.shop_domain, "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWxwaGE", "embedded": "1"}
    )

    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert location.scheme == "" and location.netloc == "" and location.path == "/app/session-token/"
    query = parse_qs(location.query)
    assert query["shop"] == [merchant.shop_domain] and query["embedded"] == ["1"]
    reload_target = urlparse(query["shopify-reload"][0])
    assert reload_target.path == "/app/"
    assert parse_qs(reload_target.query)["shop"] == [merchant.shop_domain]
    assert "id_token" not in reload_target.query
    assert response["Content-Security-Policy"] == (
        f"frame-ancestors https://{merchant.shop_domain} https://admin.shopify.com"
    )

    bounce = client.get(response["Location"])

    assert bounce.status_code == 200
    page = bounce.content.decode()
    assert '<script data-api-key="test-client-id" src="https://cdn.shopify.com/shopifycloud/app-bridge.js">' in page
    assert "polaris.js" not in page and "Alpha Pets" not in page
    assert bounce["Content-Security-Policy"] == (
        f"frame-ancestors https://{merchant.shop_domain} https://admin.shopify.com"
    )
    assert "X-Frame-Options" not in bounce
    assert "no-store" in bounce["Cache-Control"]
    assert "app-bridge.js" in bounce["Link"]


def test_a_stale_id_token_is_dropped_from_the_reload_target(client, merchant):
    response = client.get("/app/", {"shop": merchant.shop_domain, "locale": "he"})
    reload_target = parse_qs(urlparse(response["Location"]).query)["shopify-reload"][0]

    assert reload_target.startswith("/app/?") and "locale=he" in reload_target

    bounce = client.get(response["Location"])
    assert '<html lang="he" dir="rtl">' in bounce.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"shop": "alpha-pets.myshopify.com"},  # nothing to reload
        {"shop": "alpha-pets.myshopify.com", "shopify-reload": "https://evil.example.com/app/"},
        {"shop": "alpha-pets.myshopify.com", "shopify-reload": "//evil.example.com/app/"},
        {"shop": "alpha-pets.myshopify.com", "shopify-reload": "/admin/"},
        {"shop": "evil.example.com", "shopify-reload": "/app/"},
        {"shopify-reload": "/app/"},
    ],
)
def test_the_bounce_page_refuses_foreign_shops_and_reload_targets(client, params):
    response = client.get("/app/session-token/", params)

    assert response.status_code == 400
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_a_hostile_shop_parameter_is_not_bounced(client, merchant):
    response = client.get("/app/", {"shop": "evil.example.com https://evil.example.com"})

    assert response.status_code == 401
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_html_outside_the_embedded_admin_cannot_be_framed(client, merchant):
    admin = client.get("/admin/login/")
    api = APIClient().get("/v1/api/me")

    assert admin["X-Frame-Options"] == "DENY"
    assert admin["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert "Content-Security-Policy" not in api  # JSON is not a page


def test_the_bare_host_forwards_shopifys_parameters_to_the_app(client):
    # `shopify app dev` sets the app URL to its tunnel's root.
    response = client.get("/", {"shop": "alpha-pets.myshopify.com", "id_token": "t", "embedded": "1"})

    assert response.status_code == 302
    assert response["Location"] == "/app/?shop=alpha-pets.myshopify.com&id_token=t&embedded=1"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_of_a_shop_needing_reauth_exchange_once(fake_shopify):
    merchant = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    ShopifyInstallation.objects.filter(merchant=merchant).update(needs_reauth=True, reauth_reason="invalid_grant")
    respond = fake_shopify.server.respond

    def slow_token_endpoint(request):
        if request.path == "/admin/oauth/access_token":
            import time

            time.sleep(0.4)
        return respond(request)

    fake_shopify.server.respond = slow_token_endpoint
    barrier = threading.Barrier(3)
    statuses = []

    def reopen():
        try:
            barrier.wait()
            statuses.append(APIClient().get("/v1/api/me", **bearer(merchant.shop_domain)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=reopen) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200, 200, 200]
    assert len(exchanges(fake_shopify)) == 1
    installation = installation_get(merchant=merchant)
    assert installation.needs_reauth is False
    assert installation.access_token in fake_shopify.shop(merchant.shop_domain).access_tokens
    assert AuditLog.objects.filter(merchant=merchant, action="shopify_reauthorized").count() == 1


def test_every_embedded_page_is_framed_by_its_own_shop_only(client, merchant, other_merchant):
    from django.urls import get_resolver

    from apps.shopify import urls as embedded_urls

    paths = ["/app/"] + [
        f"/app/{pattern.pattern}"
        for pattern in embedded_urls.urlpatterns
        if str(pattern.pattern) and "<" not in str(pattern.pattern) and pattern.name != "session_token_bounce"
    ]
    assert get_resolver().resolve("/app/")
    for path in paths:
        response = client.get(path, {"id_token": session_token(merchant.shop_domain), "shop": merchant.shop_domain})
        assert response.status_code == 200, path
        assert response["Content-Security-Policy"] == (
            f"frame-ancestors https://{merchant.shop_domain} https://admin.shopify.com"
        ), path
        assert "X-Frame-Options" not in response, path
