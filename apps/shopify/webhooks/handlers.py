"""One handler per subscribed topic: `HANDLERS[topic](*, merchant, delivery) -> WebhookStatus`.

Every topic declared in `shopify.app.toml` has a handler here and every handler is declared
there (a test checks both ways). Handlers run inside the merchant's scope, in the processing
task's transaction, and are idempotent: the same delivery applied twice changes nothing more.
"""

from ..models import WebhookDelivery, WebhookStatus
from ..tokens import installation_revoke
from . import compliance, orders
from .payloads import PayloadInvalid


def _payload(delivery: WebhookDelivery) -> dict:
    if not isinstance(delivery.body, dict):
        raise PayloadInvalid("payload is not a JSON object")
    return delivery.body


def handle_order(*, merchant, delivery: WebhookDelivery) -> str:
    applied = orders.order_sync(merchant=merchant, payload=_payload(delivery))
    # Older than the stored order: nothing overwritten (points and refunds still settled).
    return WebhookStatus.PROCESSED if applied else WebhookStatus.SKIPPED


def handle_refund(*, merchant, delivery: WebhookDelivery) -> str:
    orders.refund_sync(merchant=merchant, payload=_payload(delivery))
    return WebhookStatus.PROCESSED


def handle_customer(*, merchant, delivery: WebhookDelivery) -> str:
    applied = orders.customer_sync(merchant=merchant, payload=_payload(delivery), delivery=delivery)
    return WebhookStatus.PROCESSED if applied else WebhookStatus.SKIPPED


def handle_app_uninstalled(*, merchant, delivery: WebhookDelivery) -> str:
    installation_revoke(merchant=merchant)
    return WebhookStatus.PROCESSED


def handle_customer_data_request(*, merchant, delivery: WebhookDelivery) -> str:
    compliance.customer_data_export(merchant=merchant, payload=_payload(delivery))
    return WebhookStatus.PROCESSED


def handle_customer_redact(*, merchant, delivery: WebhookDelivery) -> str:
    compliance.customer_redact(merchant=merchant, payload=_payload(delivery))
    return WebhookStatus.PROCESSED


def handle_shop_redact(*, merchant, delivery: WebhookDelivery) -> str:
    deleted = compliance.shop_redact(merchant=merchant, delivery=delivery)
    return WebhookStatus.SKIPPED if deleted is None else WebhookStatus.PROCESSED


HANDLERS = {
    "orders/create": handle_order,
    "orders/updated": handle_order,
    "orders/paid": handle_order,
    "orders/cancelled": handle_order,
    "refunds/create": handle_refund,
    "customers/create": handle_customer,
    "customers/update": handle_customer,
    "app/uninstalled": handle_app_uninstalled,
    "customers/data_request": handle_customer_data_request,
    "customers/redact": handle_customer_redact,
    "shop/redact": handle_shop_redact,
}

COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
