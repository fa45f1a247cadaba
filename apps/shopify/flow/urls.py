"""Shopify Flow endpoints, mounted at /shopify/flow/."""

from django.urls import path

from . import views

app_name = "shopify_flow"

urlpatterns = [
    path("actions/<slug:handle>", views.flow_action, name="action"),
]
