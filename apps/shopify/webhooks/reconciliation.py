"""Reconciliation (RELIABILITY A5): pull the orders Shopify updated since the shop's watermark
and feed each through the same idempotent handler as the orders webhooks, so a missed
webhook is recovered and a delivered one changes nothing.

The watermark is the newest `updatedAt` seen; the query is `updated_at:>=watermark`, so the
boundary order is read again next time (harmless: the handler is idempotent) and an order
updated in the same second is never skipped. It advances after each page.
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope, scopes_disabled

from ..graphql import graphql
from ..models import ShopifyInstallation, SyncWatermark
from ..tokens import access_token_for
from .orders import order_sync
from .payloads import PayloadInvalid, order_payload_from_graphql, timestamp

logger = logging.getLogger(__name__)

ORDERS_RESOURCE = "orders"
PAGE_SIZE = 100

RECONCILE_ORDERS_QUERY = """
query ReconcileOrders($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      legacyResourceId
      name
      createdAt
      processedAt
      updatedAt
      cancelledAt
      displayFinancialStatus
      currencyCode
      totalPriceSet { shopMoney { amount currencyCode } }
      customer { id legacyResourceId }
      refunds { id legacyResourceId createdAt totalRefundedSet { shopMoney { amount } } }
    }
  }
}
"""


def reconcilable_merchant_ids() -> list[str]:
    """Installed shops that have an installation to call the Admin API with."""
    with scopes_disabled():
        return list(
            ShopifyInstallation.objects.filter(merchant__is_installed=True, needs_reauth=False)
            .order_by("merchant_id")
            .values_list("merchant_id", flat=True)
        )


def orders_watermark_get(*, merchant) -> datetime:
    with merchant_scope(merchant):
        mark = SyncWatermark.objects.filter(merchant=merchant, resource=ORDERS_RESOURCE).first()
    if mark is not None:
        return mark.watermark
    lookback = timedelta(hours=settings.SHOPIFY_RECONCILE_INITIAL_LOOKBACK_HOURS)
    return max(merchant.installed_at or timezone.now(), timezone.now() - lookback) - timedelta(minutes=5)


def _watermark_advance(*, merchant, to: datetime) -> None:
    with merchant_scope(merchant):
        mark, created = SyncWatermark.objects.get_or_create(
            merchant=merchant, resource=ORDERS_RESOURCE, defaults={"watermark": to}
        )
        if not created and to > mark.watermark:
            SyncWatermark.objects.filter(pk=mark.pk).update(watermark=to, updated_at=timezone.now())


def orders_reconcile(*, merchant: Merchant, page_size: int = PAGE_SIZE) -> int:
    """Apply every order updated since the watermark; returns how many orders were read."""
    since = orders_watermark_get(merchant=merchant)
    search = f"updated_at:>='{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    access_token = access_token_for(merchant=merchant)
    after, read, skipped = None, 0, 0
    for _page in range(settings.SHOPIFY_RECONCILE_MAX_PAGES):
        data = graphql(
            shop_domain=merchant.shop_domain,
            access_token=access_token,
            query=RECONCILE_ORDERS_QUERY,
            variables={"first": page_size, "after": after, "query": search},
            estimated_cost=2 + page_size * 2,
        )
        connection = (data or {}).get("orders") or {}
        newest = None
        for node in connection.get("nodes") or []:
            payload = order_payload_from_graphql(node)
            try:
                with merchant_scope(merchant):
                    order_sync(merchant=merchant, payload=payload)
            except PayloadInvalid as exc:
                skipped += 1
                logger.warning("reconciliation of %s skipped an order: %s", merchant.pk, exc.reason)
            updated_at = timestamp(node.get("updatedAt"), field="updatedAt")
            if updated_at is not None and (newest is None or updated_at > newest):
                newest = updated_at
            read += 1
        if newest is not None:
            _watermark_advance(merchant=merchant, to=newest)
        page_info = connection.get("pageInfo") or {}
        if not page_info.get("hasNextPage") or not page_info.get("endCursor"):
            break
        after = page_info["endCursor"]
    logger.info("reconciled %s orders of %s (%s skipped)", read, merchant.pk, skipped)
    return read
