"""The widgets page of the embedded admin, mounted at /app/widgets/ (before apps.shopify's /app/)."""

from django.urls import path

from . import views

app_name = "theme_extensions"

urlpatterns = [
    path("", views.widgets_page, name="widgets"),
]
