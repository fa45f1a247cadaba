"""Fake Shopify operations sent at install time (apps.shopify.tokens).

`ShopInstallDetails` answers from `shop.data["details"]` when a test set it (keys: name,
currencyCode, ianaTimezone, plan, primaryLocale), else from defaults derived from the domain.
"""


def register(fake):
    @fake.operation("ShopInstallDetails", cost=2)
    def shop_install_details(fake, shop, variables):
        details = shop.data.get("details", {})
        handle = shop.domain.split(".")[0]
        plan = details.get("plan", {"publicDisplayName": "Advanced", "partnerDevelopment": False, "shopifyPlus": False})
        return {
            "shop": {
                "id": shop.gid,
                "name": details.get("name", handle.replace("-", " ").title()),
                "myshopifyDomain": shop.domain,
                "currencyCode": details.get("currencyCode", "USD"),
                "ianaTimezone": details.get("ianaTimezone", "America/New_York"),
                "plan": plan,
            },
            "shopLocales": [
                {"locale": details.get("primaryLocale", "en"), "primary": True},
                {"locale": "fr", "primary": False},
            ],
        }
