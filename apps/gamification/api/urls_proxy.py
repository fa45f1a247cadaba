"""Storefront endpoints, mounted at `proxy/v1/api/` (Shopify forwards `/apps/loyalnest/v1/api/…`)."""

from django.urls import path

from . import views

urlpatterns = [
    path("gamification/badges", views.ShopperBadgesApi.as_view(), name="badges"),
    path("gamification/streak", views.ShopperStreakApi.as_view(), name="streak"),
    path("gamification/team-rank", views.ShopperTeamRankApi.as_view(), name="team-rank"),
    path("gamification/teams/join", views.ShopperTeamJoinApi.as_view(), name="team-join"),
]
