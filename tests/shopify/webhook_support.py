"""Build and sign webhook deliveries the way Shopify does, and Shopify-shaped payloads."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings

WEBHOOK_URL = "/shopify/webhooks"
BASE_TIME = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sign(body: bytes, secret: str | None = None) -> str:
    digest = hmac.new((secret or settings.SHOPIFY_API_SECRET).encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_headers(
    *,
    shop: str,
    topic: str,
    body: bytes,
    webhook_id: str | None = None,
    triggered_at: datetime | None = None,
    secret: str | None = None,
    prefixed: bool = True,
    hmac_value: str | None = None,
) -> dict:
    """Headers as WSGI META keys (`HTTP_X_SHOPIFY_…`, or the newer `HTTP_SHOPIFY_…`)."""
    values = {
        "Hmac-Sha256": sign(body, secret) if hmac_value is None else hmac_value,
        "Shop-Domain": shop,
        "Topic": topic,
        "Webhook-Id": webhook_id or str(uuid.uuid4()),
        "Event-Id": str(uuid.uuid4()),
        "Triggered-At": iso(triggered_at or BASE_TIME),
        "Api-Version": "2026-10",
    }
    prefix = "HTTP_X_SHOPIFY_" if prefixed else "HTTP_SHOPIFY_"
    return {prefix + name.upper().replace("-", "_"): value for name, value in values.items() if value is not None}


def http_headers(meta: dict) -> dict:
    """The same headers as HTTP header names (for a real HTTP client)."""
    return {key.removeprefix("HTTP_").replace("_", "-"): value for key, value in meta.items()}


def post_webhook(client, *, shop: str, topic: str, payload, **kwargs):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = webhook_headers(shop=shop, topic=topic, body=body, **kwargs)
    return client.generic("POST", WEBHOOK_URL, body, content_type="application/json", **headers)


def order_payload(
    order_id: int,
    *,
    customer_id: int | None = 7001,
    total: str = "100.00",
    financial_status: str = "paid",
    updated_at: datetime | None = None,
    cancelled_at: datetime | None = None,
    refunds: list | None = None,
    email: str = "ada@example.com",
) -> dict:
    updated_at = updated_at or BASE_TIME
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id % 10000}",
        "email": email,
        "created_at": iso(BASE_TIME - timedelta(minutes=5)),
        "processed_at": iso(BASE_TIME - timedelta(minutes=5)),
        "updated_at": iso(updated_at),
        "cancelled_at": iso(cancelled_at) if cancelled_at else None,
        "financial_status": financial_status,
        "currency": "USD",
        "total_price": total,
        "customer": (
            {"id": customer_id, "email": email, "first_name": "Ada", "last_name": "Lovelace", "phone": "+15550001"}
            if customer_id
            else None
        ),
        "billing_address": {"first_name": "Ada", "address1": "12 Analytical Row", "city": "London"},
        "refunds": refunds or [],
    }


def refund_payload(refund_id: int, order_id: int, amount: str) -> dict:
    return {
        "id": refund_id,
        "order_id": order_id,
        "created_at": iso(BASE_TIME + timedelta(hours=1)),
        "transactions": [{"id": refund_id * 10, "kind": "refund", "status": "success", "amount": amount}],
        "refund_line_items": [],
    }


def graphql_order_node(order_id: int, *, customer_id: int | None, total: str, updated_at: datetime, refunds=()):
    return {
        "id": f"gid://shopify/Order/{order_id}",
        "legacyResourceId": str(order_id),
        "name": f"#{order_id % 10000}",
        "createdAt": iso(updated_at - timedelta(minutes=1)),
        "processedAt": iso(updated_at - timedelta(minutes=1)),
        "updatedAt": iso(updated_at),
        "cancelledAt": None,
        "displayFinancialStatus": "PAID",
        "currencyCode": "USD",
        "totalPriceSet": {"shopMoney": {"amount": total, "currencyCode": "USD"}},
        "customer": (
            {"id": f"gid://shopify/Customer/{customer_id}", "legacyResourceId": str(customer_id)}
            if customer_id
            else None
        ),
        "refunds": [
            {
                "id": f"gid://shopify/Refund/{rid}",
                "legacyResourceId": str(rid),
                "createdAt": iso(updated_at),
                "totalRefundedSet": {"shopMoney": {"amount": amount}},
            }
            for rid, amount in refunds
        ],
    }
