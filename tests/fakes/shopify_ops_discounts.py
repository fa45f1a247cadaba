"""Discount codes in the fake Shopify: `discountCodeBasicCreate`, `discountCodeFreeShippingCreate`
and `codeDiscountNodeByCode`, as the Admin API reference describes them:
- codes are unique per shop, case-insensitively; a second create → a `TAKEN` userError on `code`;
- the buyers are named by `context.customers.add` (or the deprecated `customerSelection`), and
  every id must be a Customer gid (else `INVALID`); a percentage lies in 0.0–1.0.

State lives in `shop.data["discounts"]`: code (upper-case) → {"id", "kind", "input"}.
"""

import re

CUSTOMER_GID = re.compile(r"^gid://shopify/Customer/\d+$")


def _store(shop) -> dict:
    return shop.data.setdefault("discounts", {})


def discounts_of(fake, domain: str) -> dict:
    return _store(fake.shop(domain))


def _customers(data: dict) -> list | None:
    selection = data.get("context") or data.get("customerSelection") or {}
    return (selection.get("customers") or {}).get("add")


def _errors(data: dict, shop) -> list[dict]:
    errors = []
    code = data.get("code") or ""
    if not code.strip():
        errors.append({"field": ["code"], "code": "BLANK", "message": "Code can't be blank"})
    elif code.upper() in _store(shop):
        errors.append(
            {"field": ["code"], "code": "TAKEN", "message": "Code must be unique. Please try a different code."}
        )
    customers = _customers(data)
    if not customers or not all(isinstance(c, str) and CUSTOMER_GID.match(c) for c in customers):
        errors.append({"field": ["context"], "code": "INVALID", "message": "Customers must be Customer ids"})
    percentage = ((data.get("customerGets") or {}).get("value") or {}).get("percentage")
    if percentage is not None and not 0 < float(percentage) <= 1:
        errors.append({"field": ["customerGets"], "code": "VALUE_OUTSIDE_RANGE", "message": "Invalid percentage"})
    return errors


def _create(fake, shop, data: dict, kind: str, field: str) -> dict:
    errors = _errors(data, shop) + [dict(e) for e in shop.data.get("discount_errors", [])]
    if errors:
        return {field: {"codeDiscountNode": None, "userErrors": errors}}
    store = _store(shop)
    discount_id = f"gid://shopify/DiscountCodeNode/{len(store) + 5001}"
    store[data["code"].upper()] = {"id": discount_id, "kind": kind, "input": data}
    return {field: {"codeDiscountNode": {"id": discount_id}, "userErrors": []}}


def register(fake):
    @fake.operation("RewardDiscountBasicCreate", cost=10)
    def basic_create(fake, shop, variables):
        return _create(fake, shop, variables["basicCodeDiscount"], "basic", "discountCodeBasicCreate")

    @fake.operation("RewardDiscountFreeShippingCreate", cost=10)
    def free_shipping_create(fake, shop, variables):
        return _create(
            fake, shop, variables["freeShippingCodeDiscount"], "free_shipping", "discountCodeFreeShippingCreate"
        )

    @fake.operation("RewardDiscountByCode", cost=2)
    def by_code(fake, shop, variables):
        found = _store(shop).get(str(variables.get("code", "")).upper())
        return {"codeDiscountNodeByCode": {"id": found["id"]} if found else None}
