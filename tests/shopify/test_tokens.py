"""Offline tokens: stored encrypted, refreshed early under a per-shop lock, re-authorisation."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import override

from apps.core.models import AuditLog
from apps.shopify.graphql import ShopifyAuthError
from apps.shopify.tokens import REFRESH_MARGIN, access_token_for, installation_get, installation_revoke
from tests.factories import MerchantFactory
from tests.shopify_helpers import shopify_connect

pytestmark = pytest.mark.django_db


def token_requests(fake, grant_type):
    return [
        r
        for r in fake.server.requests
        if r.path == "/admin/oauth/access_token" and r.json().get("grant_type") == grant_type
    ]


def stored_columns(merchant):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM shopify_installations WHERE merchant_id = %s", [merchant.pk]
        )
        return cursor.fetchone()


def test_a_fresh_token_is_returned_without_calling_shopify(fake_shopify, merchant, other_merchant):
    access, _ = shopify_connect(fake_shopify, merchant)

    assert access_token_for(merchant=merchant) == access
    assert token_requests(fake_shopify, "refresh_token") == []


def test_a_token_inside_the_margin_is_refreshed_and_the_pair_rotated(fake_shopify, merchant, other_merchant):
    old_access, old_refresh = shopify_connect(fake_shopify, merchant, expires_in=REFRESH_MARGIN - timedelta(seconds=30))
    beta = other_merchant["merchant"]
    beta_access, beta_refresh = shopify_connect(fake_shopify, beta)

    token = access_token_for(merchant=merchant)

    assert token != old_access and token.startswith("shpat_")
    assert len(token_requests(fake_shopify, "refresh_token")) == 1
    installation = installation_get(merchant=merchant)
    assert installation.access_token == token
    assert installation.refresh_token not in ("", old_refresh)
    assert installation.access_token_expires_at > timezone.now() + timedelta(minutes=55)
    assert installation.refresh_token_expires_at > timezone.now() + timedelta(days=89)
    stored_access, stored_refresh = stored_columns(merchant)
    assert stored_access.startswith("enc1:") and token not in stored_access
    assert stored_refresh.startswith("enc1:") and installation.refresh_token not in stored_refresh
    # The new token works against the Admin API; the other shop was not touched.
    assert token in fake_shopify.shop(merchant.shop_domain).access_tokens
    beta_installation = installation_get(merchant=beta)
    assert (beta_installation.access_token, beta_installation.refresh_token) == (beta_access, beta_refresh)


def test_invalid_grant_marks_needs_reauth_with_a_localized_message(fake_shopify, merchant, other_merchant):
    shopify_connect(fake_shopify, merchant, expires_in=timedelta(seconds=-1))
    fake_shopify.shop(merchant.shop_domain).refresh_tokens.clear()  # revoked on Shopify's side
    beta = other_merchant["merchant"]
    shopify_connect(fake_shopify, beta)

    with pytest.raises(ShopifyAuthError) as raised:
        access_token_for(merchant=merchant)

    installation = installation_get(merchant=merchant)
    assert installation.needs_reauth is True
    assert installation.reauth_reason == "invalid_grant"
    assert AuditLog.objects.filter(merchant=merchant, action="shopify_reauth_required").count() == 1
    assert raised.value.code == "shopify_reauth_required" and raised.value.status == 401
    assert isinstance(raised.value.message, Promise)  # rendered in the request's locale
    with override("en"):
        assert str(raised.value.message).startswith("LoyalNest needs to be reconnected to your Shopify store")
    # Asking again does not call Shopify again: the installation waits for a new session token.
    with pytest.raises(ShopifyAuthError):
        access_token_for(merchant=merchant)
    assert len(token_requests(fake_shopify, "refresh_token")) == 1
    assert installation_get(merchant=beta).needs_reauth is False


def test_an_expired_refresh_token_needs_reauth_without_calling_shopify(fake_shopify, merchant):
    shopify_connect(fake_shopify, merchant, expires_in=timedelta(seconds=-1), refresh_expires_in=timedelta(seconds=-1))

    with pytest.raises(ShopifyAuthError):
        access_token_for(merchant=merchant)

    assert installation_get(merchant=merchant).reauth_reason == "refresh_token_expired"
    assert token_requests(fake_shopify, "refresh_token") == []


def test_a_shopify_outage_during_refresh_is_retryable_and_keeps_the_grant(fake_shopify, merchant):
    _, refresh = shopify_connect(fake_shopify, merchant, expires_in=timedelta(seconds=-1))
    fake_shopify.fail_next(3, status=503)

    with pytest.raises(Exception) as raised:
        access_token_for(merchant=merchant)

    assert not isinstance(raised.value, ShopifyAuthError)
    assert raised.value.retryable is True
    installation = installation_get(merchant=merchant)
    assert installation.needs_reauth is False and installation.refresh_token == refresh
    assert access_token_for(merchant=merchant).startswith("shpat_")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshers_refresh_once_and_share_the_new_token(fake_shopify):
    merchant = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    beta = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    shopify_connect(fake_shopify, merchant, expires_in=timedelta(seconds=10))
    beta_access, _ = shopify_connect(fake_shopify, beta)
    respond = fake_shopify.server.respond

    def slow_token_endpoint(request):
        if request.path == "/admin/oauth/access_token":
            time.sleep(0.5)  # the second worker arrives while the first is mid-refresh
        return respond(request)

    fake_shopify.server.respond = slow_token_endpoint
    barrier = threading.Barrier(2)
    results, failures = [], []

    def worker():
        try:
            barrier.wait()
            results.append(access_token_for(merchant=merchant))
        except Exception as exc:  # collected and asserted below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    assert len(token_requests(fake_shopify, "refresh_token")) == 1
    assert len(results) == 2 and results[0] == results[1]
    assert results[0] in fake_shopify.shop(merchant.shop_domain).access_tokens
    assert installation_get(merchant=merchant).access_token == results[0]
    assert installation_get(merchant=beta).access_token == beta_access


def test_revoke_wipes_both_tokens_and_marks_the_merchant_uninstalled(fake_shopify, merchant, other_merchant):
    shopify_connect(fake_shopify, merchant)
    beta = other_merchant["merchant"]
    beta_access, _ = shopify_connect(fake_shopify, beta)

    installation_revoke(merchant=merchant)
    installation_revoke(merchant=merchant)  # Shopify may deliver app/uninstalled twice

    merchant.refresh_from_db()
    installation = installation_get(merchant=merchant)
    assert merchant.is_installed is False and merchant.uninstalled_at is not None
    assert installation.access_token == "" and installation.refresh_token == ""
    assert installation.access_token_expires_at is None and installation.refresh_token_expires_at is None
    assert stored_columns(merchant) == ("", "")
    assert AuditLog.objects.filter(merchant=merchant, action="app_uninstalled").count() == 1
    with pytest.raises(ShopifyAuthError):
        access_token_for(merchant=merchant)
    beta.refresh_from_db()
    assert beta.is_installed is True
    assert installation_get(merchant=beta).access_token == beta_access


def test_an_api_error_for_a_lost_grant_asks_app_bridge_to_retry(fake_shopify, merchant):
    from apps.core.api.exceptions import envelope_exception_handler
    from apps.shopify.tokens import ShopifyReauthRequired

    response = envelope_exception_handler(ShopifyReauthRequired(detail="invalid_grant"), {})

    assert response.status_code == 401
    assert response.data["error"]["code"] == "shopify_reauth_required"
    assert response["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert "invalid_grant" not in str(response.data)  # the detail is for logs, not for the browser
