"""Flow triggers: LoyalNest events that start merchants' workflows.

| handle                   | fired when                                    | payload                                  |
|--------------------------|-----------------------------------------------|------------------------------------------|
| `loyalnest-tier-changed` | the metafield sync writes a customer's VIP    | `customer_id` (Shopify's numeric id),    |
|                          | tier copy with another tier than it last wrote| `Previous tier`, `New tier` (English     |
|                          |                                               | names, "" below the first tier),         |
|                          |                                               | `Points balance`                         |

The trigger extensions (TOML, same handles and field keys) are deployed with the app; the
payload keys are the `key`s of their fields, and `customer_id` is Flow's customer reference.
"""

import json
import logging
import random
import re

from celery import shared_task
from django.db import transaction

from apps.core.audit import audit_record
from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope

from ..graphql import ShopifyAuthError, ShopifyError, ShopifyUserError, graphql
from ..tokens import access_token_for

logger = logging.getLogger(__name__)

TRIGGER_TIER_CHANGED = "loyalnest-tier-changed"
TRIGGERS = (TRIGGER_TIER_CHANGED,)

HANDLE = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")  # Flow: at most 30 characters, letters, digits, hyphens
MAX_PAYLOAD_BYTES = 50_000

FLOW_TRIGGER_RECEIVE = """
mutation FlowTriggerReceive($handle: String!, $payload: JSON!) {
  flowTriggerReceive(handle: $handle, payload: $payload) {
    userErrors { field message }
  }
}
"""


def _validated(handle: str, payload: dict) -> None:
    if not isinstance(handle, str) or not HANDLE.match(handle):
        raise ValueError("a Flow trigger handle is 1-30 lowercase letters, digits and hyphens")
    if not isinstance(payload, dict):
        raise ValueError("a Flow trigger payload is a JSON object")
    if len(json.dumps(payload).encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError("the Flow trigger payload is too large")


def flow_trigger_fire(*, merchant, handle: str, payload: dict) -> None:
    """Fire a Flow trigger for the merchant's shop once the current transaction commits."""
    _validated(handle, payload)
    merchant_id = merchant.pk
    transaction.on_commit(lambda: flow_trigger_fire_task.delay(merchant_id=merchant_id, handle=handle, payload=payload))


def flow_trigger_send(*, merchant, handle: str, payload: dict) -> None:
    """Send `flowTriggerReceive` now. Raises ShopifyUserError when Flow refuses it."""
    _validated(handle, payload)
    graphql(
        shop_domain=merchant.shop_domain,
        access_token=access_token_for(merchant=merchant),
        query=FLOW_TRIGGER_RECEIVE,
        variables={"handle": handle, "payload": payload},
        user_errors_at="flowTriggerReceive.userErrors",
        estimated_cost=10,
    )
    with transaction.atomic(), merchant_scope(merchant):
        audit_record(merchant=merchant, action="flow_trigger_fired", metadata={"handle": handle})


@shared_task(bind=True, acks_late=True, max_retries=5)
def flow_trigger_fire_task(self, *, merchant_id: str, handle: str, payload: dict) -> bool:
    merchant = Merchant.objects.filter(pk=merchant_id, is_installed=True).first()
    if merchant is None:
        return False
    try:
        flow_trigger_send(merchant=merchant, handle=handle, payload=payload)
    except ShopifyAuthError:
        logger.warning("Flow trigger %s for %s dropped: the shop must re-authorise", handle, merchant_id)
        return False
    except ShopifyUserError as refused:
        logger.warning("Flow refused trigger %s for %s: %s", handle, merchant_id, refused.detail)
        return False
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        delay = min(600, 10 * 2**self.request.retries) * random.uniform(0.5, 1.0)  # noqa: S311  (jitter)
        raise self.retry(exc=exc, countdown=delay) from exc
    return True
