"""The webhook endpoint, mounted at /shopify/ (declared in shopify.app.toml)."""

from django.urls import path

from . import views

app_name = "shopify_webhooks"

urlpatterns = [
    path("webhooks", views.webhook_receive, name="receive"),
]
