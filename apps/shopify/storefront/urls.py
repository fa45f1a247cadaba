"""Storefront API, mounted at `proxy/v1/api/` (Shopify forwards `/apps/loyalnest/v1/api/…`)."""

from django.urls import path

from . import views

urlpatterns = [
    path("points", views.ShopperPointsApi.as_view(), name="points"),
    path("points/redeem", views.ShopperPointsRedeemApi.as_view(), name="points-redeem"),
    path("rewards", views.ShopperRewardListApi.as_view(), name="rewards"),
    path("redemptions", views.ShopperRedemptionListApi.as_view(), name="redemptions"),
    path("referral-link", views.ShopperReferralLinkApi.as_view(), name="referral-link"),
    path("referral/<str:code>", views.ReferralLookupApi.as_view(), name="referral-lookup"),
]
