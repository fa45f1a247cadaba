"""The GraphQL operations the fake Shopify answers, grouped by the feature that sends them.

Each `register_*` function adds handlers with `fake.operation(name, cost)`; `register_all`
is what the `fake_shopify` fixture calls. Handlers keep their state in `shop.data`.
"""

from tests.fakes import shopify_ops_install, shopify_ops_metafields


def register_shop(fake):
    @fake.operation("ShopIdentity", cost=1)
    def shop_identity(fake, shop, variables):
        return {"shop": {"id": shop.gid, "name": shop.domain.split(".")[0], "myshopifyDomain": shop.domain}}


def register_all(fake):
    register_shop(fake)
    __import__("tests.fakes.shopify_ops_webhooks", fromlist=["register"]).register(fake)
    shopify_ops_install.register(fake)
    shopify_ops_metafields.register(fake)
    __import__("tests.fakes.shopify_ops_discounts", fromlist=["register"]).register(fake)
    __import__("tests.fakes.shopify_ops_billing", fromlist=["register"]).register(fake)
