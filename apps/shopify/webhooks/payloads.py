"""Reading Shopify payloads: ids, money, timestamps, and scrubbing personal data out of them.

Webhook bodies are the REST-shaped JSON Shopify sends; reconciliation turns GraphQL order nodes
into the same shape (`order_payload_from_graphql`) so both go through one handler.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime


class PayloadInvalid(Exception):
    """The payload cannot be processed, and retrying will not change that (a poison message).

    `reason` is shown in admin: it names the problem, never a value from the payload.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def shopify_id(value, *, field: str) -> str:
    """A numeric Shopify id (`123`, `"123"` or `"gid://shopify/Order/123"`) as text."""
    if isinstance(value, bool) or value is None:
        raise PayloadInvalid(f"{field} is missing")
    text = str(value).rsplit("/", 1)[-1].strip()
    if not text.isdigit() or len(text) > 32:
        raise PayloadInvalid(f"{field} is not a Shopify id")
    return text


def optional_shopify_id(value, *, field: str) -> str | None:
    return None if value in (None, "") else shopify_id(value, field=field)


def money(value, *, field: str) -> Decimal:
    if isinstance(value, dict):  # GraphQL MoneyBag: {"shopMoney": {"amount": "…"}}
        value = (value.get("shopMoney") or {}).get("amount")
    if isinstance(value, bool) or value is None:
        raise PayloadInvalid(f"{field} is missing")
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise PayloadInvalid(f"{field} is not an amount") from exc
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise PayloadInvalid(f"{field} is out of range")
    return amount


def timestamp(value, *, field: str, required: bool = False) -> datetime | None:
    if value in (None, ""):
        if required:
            raise PayloadInvalid(f"{field} is missing")
        return None
    parsed = parse_datetime(str(value)) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise PayloadInvalid(f"{field} is not a timestamp with a time zone")
    return parsed


def refund_amount(refund: dict) -> Decimal:
    """Money actually returned by one refund: its successful refund transactions (shipping
    and adjustments included), or the refunded line items when Shopify sent no transactions."""
    transactions = refund.get("transactions") or []
    if transactions:
        total = Decimal("0")
        for transaction in transactions:
            if not isinstance(transaction, dict):
                raise PayloadInvalid("refund transaction is not an object")
            if transaction.get("kind") == "refund" and transaction.get("status") in ("success", None):
                total += money(transaction.get("amount"), field="refund transaction amount")
        return total
    total = Decimal("0")
    for line in refund.get("refund_line_items") or []:
        if not isinstance(line, dict):
            raise PayloadInvalid("refund line item is not an object")
        total += money(line.get("subtotal", "0"), field="refund line subtotal")
        total += money(line.get("total_tax", "0"), field="refund line tax")
    return total


def order_payload_from_graphql(node: dict) -> dict:
    """A GraphQL `Order` node (reconciliation) in the shape of the orders webhooks' payload."""
    customer = node.get("customer") or None
    refunds = []
    for refund in node.get("refunds") or []:
        refunds.append(
            {
                "id": refund.get("legacyResourceId") or refund.get("id"),
                "created_at": refund.get("createdAt"),
                "transactions": [
                    {
                        "kind": "refund",
                        "status": "success",
                        "amount": (refund.get("totalRefundedSet") or {}).get("shopMoney", {}).get("amount"),
                    }
                ],
            }
        )
    return {
        "id": node.get("legacyResourceId") or node.get("id"),
        "name": node.get("name") or "",
        "created_at": node.get("createdAt"),
        "processed_at": node.get("processedAt") or node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": str(node.get("displayFinancialStatus") or "").lower(),
        "currency": node.get("currencyCode")
        or (node.get("totalPriceSet") or {}).get("shopMoney", {}).get("currencyCode"),
        "total_price": (node.get("totalPriceSet") or {}).get("shopMoney", {}).get("amount"),
        "customer": {"id": customer.get("legacyResourceId") or customer.get("id")} if customer else None,
        "refunds": refunds,
    }


# Keys whose values identify a person in Shopify's order and customer payloads.
PERSONAL_KEYS = frozenset(
    {
        "email",
        "contact_email",
        "phone",
        "first_name",
        "last_name",
        "name",
        "company",
        "address1",
        "address2",
        "city",
        "zip",
        "province",
        "province_code",
        "latitude",
        "longitude",
        "browser_ip",
        "client_details",
        "note",
        "note_attributes",
        "billing_address",
        "shipping_address",
        "default_address",
        "addresses",
        "customer",
        "unparsed",
        "landing_site",
        "referring_site",
        "tags",
        "multipass_identifier",
        "sms_marketing_consent",
        "email_marketing_consent",
    }
)


def scrub_personal_data(value):
    """A copy of a payload without the values that identify a person (ids and amounts stay)."""
    if isinstance(value, dict):
        return {
            key: (None if key in PERSONAL_KEYS else scrub_personal_data(item))
            for key, item in value.items()
            if not (key == "customer" and item is None)
        }
    if isinstance(value, list):
        return [scrub_personal_data(item) for item in value]
    return value
