"""The Admin GraphQL client against the fake Shopify (E2: timeouts, retries, THROTTLED)."""

import socket

import pytest

from apps.shopify import http as shopify_http
from apps.shopify.graphql import CostBudget, ShopifyAuthError, ShopifyError, ShopifyUserError, graphql

SHOP = "alpha-pets.myshopify.com"
QUERY = "query ShopIdentity { shop { id name myshopifyDomain } }"


@pytest.fixture
def token(fake_shopify):
    access, _refresh = fake_shopify.issue_tokens(SHOP)
    return access


def _call(token, query=QUERY, **kwargs):
    sleeps = []
    data = graphql(shop_domain=SHOP, access_token=token, query=query, sleep=sleeps.append, **kwargs)
    return data, sleeps


def test_a_query_returns_data_and_records_the_cost_bucket(fake_shopify, token):
    data, sleeps = _call(token)

    assert data["shop"]["myshopifyDomain"] == SHOP
    assert sleeps == []
    assert 0 < CostBudget(SHOP)._load().available <= 1000


def test_server_errors_are_retried_with_backoff(fake_shopify, token):
    fake_shopify.fail_next(2, status=503)

    data, sleeps = _call(token)

    assert data["shop"]["id"].startswith("gid://shopify/Shop/")
    assert len(sleeps) == 2 and all(0 <= s <= 8 for s in sleeps)


def test_429_honours_retry_after(fake_shopify, token):
    fake_shopify.fail_next(1, status=429)

    _data, sleeps = _call(token)

    assert len(sleeps) == 1


def test_persistent_failure_ends_in_a_retryable_error(fake_shopify, token, settings):
    fake_shopify.fail_next(settings.SHOPIFY_GRAPHQL_MAX_ATTEMPTS, status=502)

    with pytest.raises(ShopifyError) as caught:
        _call(token)

    assert caught.value.retryable and caught.value.code == "shopify_error"
    assert len([c for c in fake_shopify.calls if c[1] == "ShopIdentity"]) == 0


def test_throttled_with_http_200_waits_for_the_bucket_and_retries(fake_shopify, token):
    fake_shopify.drain(SHOP)
    fake_shopify.restore_rate = 1000.0  # refills within milliseconds of real time

    data, sleeps = _call(token, estimated_cost=1)

    assert data["shop"]
    assert sleeps and all(s <= 20 for s in sleeps)


def test_the_shared_budget_makes_the_next_caller_wait(fake_shopify, token):
    fake_shopify.drain(SHOP)
    fake_shopify.restore_rate = 1000.0
    _call(token, estimated_cost=1)
    CostBudget(SHOP).record({"maximumAvailable": 1000, "currentlyAvailable": 0, "restoreRate": 50})

    _data, sleeps = _call(token, estimated_cost=100)

    assert sleeps and sleeps[0] == pytest.approx(2.0, abs=0.2)


def test_an_invalid_token_is_an_auth_error_not_retried(fake_shopify):
    with pytest.raises(ShopifyAuthError):
        _call("shpat_forged")


def test_user_errors_are_raised_typed(fake_shopify, token):
    @fake_shopify.operation("Refuse", cost=1)
    def refuse(fake, shop, variables):
        return {
            "metafieldsSet": {
                "metafields": [],
                "userErrors": [{"field": ["x"], "message": "Bad value", "code": "INVALID"}],
            }
        }

    with pytest.raises(ShopifyUserError) as caught:
        _call(
            token,
            query="mutation Refuse { metafieldsSet { userErrors { message } } }",
            user_errors_at="metafieldsSet.userErrors",
        )

    assert caught.value.codes == {"INVALID"} and not caught.value.retryable


def test_graphql_errors_are_not_retried(fake_shopify, token):
    with pytest.raises(ShopifyError) as caught:
        _call(token, query="query NoSuchOperation { nothing }")

    assert not caught.value.retryable


def test_an_unreachable_shopify_is_retryable(settings, token):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.SHOPIFY_API_BASE_URL = f"http://127.0.0.1:{port}"
    shopify_http._client.cache_clear()

    with pytest.raises(ShopifyError) as caught:
        _call(token)

    assert caught.value.retryable
