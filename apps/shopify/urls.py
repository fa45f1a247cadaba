"""The embedded Shopify admin, mounted at /app/. Feature pages add `/app/<feature>/` here."""

from django.urls import path

from . import views

app_name = "shopify"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("session-token/", views.session_token_bounce, name="session_token_bounce"),
]
