"""Storefront widget endpoints, mounted at `proxy/v1/api/` (Shopify forwards `/apps/loyalnest/v1/api/…`)."""

from django.urls import path

from . import proxy

urlpatterns = [
    path("widgets", proxy.ShopperWidgetApi.as_view(), name="widgets"),
    path("widgets/content", proxy.WidgetContentApi.as_view(), name="widgets-content"),
    path("widgets/events", proxy.WidgetEventApi.as_view(), name="widgets-events"),
]
