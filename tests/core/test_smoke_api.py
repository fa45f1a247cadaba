from tests.shopify_helpers import auth_header


def test_me_returns_the_callers_shop_only(api, owner, other_merchant):
    response = api.get("/v1/api/me", **auth_header(owner))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["error"] is None
    assert body["merchant"]["shop_domain"] == "alpha-pets.myshopify.com"
    assert "beta-gadgets" not in response.content.decode()
