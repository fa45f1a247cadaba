"""Fake Shopify operations of the merchant referral program.

- `AppCreditCreate` — the Partner API's `appCreditCreate` (the app reaches it as the pseudo-shop
  `partners.shopify.com`; tests issue its token with `fake.issue_tokens(PARTNERS)`). Credits are
  kept in the credited shop's `data["app_credits"]`; `fake.shop(PARTNERS).data["refuse"]` makes
  it answer with a userError.
- `MerchantReferralShopOwner` — `shop { id email }`, the owner's address from
  `shop.data["owner_email"]` (default `owner@<handle>.example`).
"""

PARTNERS = "partners.shopify.com"


def _shop_by_partner_gid(fake, gid: str):
    number = gid.rsplit("/", 1)[-1]
    for shop in fake.shops.values():
        if shop.gid.rsplit("/", 1)[-1] == number and shop.domain != PARTNERS:
            return shop
    return None


def register(fake):
    @fake.operation("AppCreditCreate", cost=10)
    def app_credit_create(fake, partners, variables):
        shop = _shop_by_partner_gid(fake, variables.get("shopId", ""))
        if partners.data.get("refuse"):
            return {
                "appCreditCreate": {
                    "appCredit": None,
                    "userErrors": [{"field": ["amount"], "message": partners.data["refuse"]}],
                }
            }
        if shop is None:
            return {
                "appCreditCreate": {
                    "appCredit": None,
                    "userErrors": [{"field": ["shopId"], "message": "Shop not found"}],
                }
            }
        credits = shop.data.setdefault("app_credits", [])
        credit = {
            "id": f"gid://partners/AppCredit/{len(credits) + 1}",
            "amount": {"amount": variables["amount"]["amount"], "currencyCode": variables["amount"]["currencyCode"]},
            "name": variables["description"],
            "test": bool(variables.get("test")),
        }
        credits.append(credit)
        return {"appCreditCreate": {"appCredit": credit, "userErrors": []}}

    @fake.operation("MerchantReferralShopOwner", cost=1)
    def shop_owner(fake, shop, variables):
        handle = shop.domain.split(".")[0]
        return {"shop": {"id": shop.gid, "email": shop.data.get("owner_email", f"owner@{handle}.example")}}
