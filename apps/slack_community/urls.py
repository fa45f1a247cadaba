"""The LoyalNest Collective page of the embedded admin, mounted at /app/community/."""

from django.urls import path

from . import views

app_name = "slack_community"

urlpatterns = [path("", views.community_page, name="page")]
