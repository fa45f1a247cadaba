"""Merchant API of reward redemptions, mounted at `v1/api/` (see api.py)."""

from django.urls import path

from . import api

urlpatterns = [
    path("points/redeem", api.MerchantPointsRedeemApi.as_view(), name="points-redeem"),
    path(
        "customers/<str:customer_id>/redemptions",
        api.CustomerRedemptionListApi.as_view(),
        name="customer-redemptions",
    ),
]
