"""App-proxy requests skip the browser-only middleware (`StorefrontRouterMiddleware`)."""

import pytest
from django.conf import settings
from django.test import Client

from apps.core.models import Customer
from tests.factories import CustomerFactory
from tests.shopify_helpers import auth_header, proxy_signed_query

SHOP = "alpha-pets.myshopify.com"


@pytest.fixture
def browser():
    """A client that sends what a browser sends: a session cookie and a CSRF cookie."""
    client = Client()
    client.cookies["sessionid"] = "a-session-from-an-earlier-visit"
    client.cookies["csrftoken"] = "x" * 32
    return client


def test_the_router_sits_after_the_guards_every_request_needs_and_before_the_browser_ones():
    order = settings.MIDDLEWARE
    router = order.index("apps.core.middleware.StorefrontRouterMiddleware")
    assert order.index("django.middleware.security.SecurityMiddleware") < router
    assert order.index("apps.core.middleware.RequestSizeLimitMiddleware") < router
    for browser_only in (
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ):
        assert router < order.index(browser_only), browser_only


def test_a_storefront_answer_has_the_security_headers_and_none_of_the_browser_ones(browser, merchant, other_merchant):
    CustomerFactory(merchant=merchant, shopify_customer_id="6001")

    response = browser.get(f"/proxy/v1/api/widgets?{proxy_signed_query(SHOP, '6001', locale='fr')}")

    assert response.status_code == 200, response.content
    assert response.json()["content"]["locale"] == "fr"  # the view resolves the locale itself
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware, before the router
    assert "X-Frame-Options" not in response  # clickjacking middleware: not reached
    assert "Content-Language" not in response  # locale middleware: not reached
    assert "Cookie" not in response.get("Vary", "")  # no session or CSRF middleware
    assert not response.cookies  # nothing set or refreshed
    assert other_merchant["merchant"].pk not in response.content.decode()
    # What CommonMiddleware (not reached) gives the rest of the site: a length, not chunks.
    assert int(response["Content-Length"]) == len(response.content)


def test_the_admin_api_still_goes_through_every_middleware(owner, merchant):
    response = Client().get("/v1/api/me", **auth_header(owner))

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"  # the full chain ran


def test_unknown_storefront_paths_still_answer_in_the_envelope(browser, merchant):
    response = browser.get(f"/proxy/v1/api/no-such-endpoint?{proxy_signed_query(SHOP, '6001')}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_oversized_storefront_body_is_refused_before_the_router(browser, merchant, settings):
    settings.API_MAX_BODY_BYTES = 100
    before = Customer.objects.count()

    response = browser.post(
        f"/proxy/v1/api/widgets/events?{proxy_signed_query(SHOP, '6001')}",
        data="{" + '"x": "' + "y" * 500 + '"}',
        content_type="application/json",
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Customer.objects.count() == before
