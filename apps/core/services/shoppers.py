"""Shoppers known only by the identity Shopify verified for them (the app proxy)."""

from django.db import IntegrityError, transaction

from apps.core.audit import audit_record
from apps.core.models import Customer
from apps.core.tracking import track_on_commit

CUSTOMER_BY_SHOPIFY_ID = (
    f"SELECT * FROM {Customer._meta.db_table} WHERE merchant_id = %s AND shopify_customer_id = %s LIMIT 1"  # noqa: S608
)


def customer_get_or_create_by_shopify_id(*, merchant, shopify_customer_id: str) -> Customer:
    """Return the merchant's customer with this Shopify id, creating a bare row when unknown.

    A shopper can log in before the customers/create webhook is processed. The row created
    here holds only the Shopify id: no name or email, which the webhook fills in later.
    """
    # The storefront's hottest query, once per app-proxy request: fixed SQL (no query building)
    # on the unique (merchant, shopify_customer_id) key.
    found = list(Customer.objects.raw(CUSTOMER_BY_SHOPIFY_ID, [merchant.pk, shopify_customer_id]))
    if found:
        return found[0]
    try:
        return _customer_create(merchant=merchant, shopify_customer_id=shopify_customer_id)
    except IntegrityError:
        # A concurrent request (or the webhook) created it first.
        return Customer.objects.get(merchant=merchant, shopify_customer_id=shopify_customer_id)


@transaction.atomic
def _customer_create(*, merchant, shopify_customer_id: str) -> Customer:
    customer = Customer.objects.create(merchant=merchant, shopify_customer_id=shopify_customer_id)
    audit_record(
        merchant=merchant,
        action="customer_created",
        target=customer,
        metadata={"source": "app_proxy"},
    )
    track_on_commit("customer_created", merchant=merchant, distinct_id=customer.pk, properties={"source": "app_proxy"})
    return customer
