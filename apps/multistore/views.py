"""The merchant's multi-store page at /app/multi-store/: members, invites, sharing switches,
the link review list, sync accuracy and lag per store. Actions call the session-token API."""

from django.shortcuts import render

from apps.core.tenancy import merchant_scope, scopes_disabled
from apps.shopify.views import _base_context, _carried_query, _denied, embedded_page, feature_navigation

from . import selectors

PAGE_SCOPE = "admin:points"


@embedded_page
def multistore_page(request, session):
    merchant = session.merchant
    with merchant_scope(merchant):
        if not session.has_scope(PAGE_SCOPE):
            return _denied(request, 403, session.locale)
        overview = selectors.group_overview(merchant=merchant)
    names = {}
    if overview:
        with scopes_disabled():
            for review in selectors.link_review_list(
                group=selectors.StoreGroupMember.across_stores.get(merchant=merchant).group
            ):
                for customer in review.customers.all():
                    names[customer.pk] = (customer.display_name, customer.merchant.shop_domain)
        for store in overview["stores"]:
            accuracy = store["accuracy"]
            store["accuracy_percent"] = round(accuracy * 100, 1) if accuracy is not None else None
        for review in overview["reviews"]:
            for customer in review["customers"]:
                customer["name"], customer["shop_domain"] = names.get(customer["customer_id"], ("", ""))
    context = {
        **_base_context(session.locale),
        "merchant": merchant,
        "features": feature_navigation(),
        "query": _carried_query(request),
        "overview": overview,
    }
    return render(request, "multistore/page.html", context)
