from django.urls import path

from . import views

urlpatterns = [
    path("merchant-referrals/create", views.MerchantReferralCreateApi.as_view(), name="create"),
    path("merchant-referrals/analytics", views.MerchantReferralAnalyticsApi.as_view(), name="analytics"),
]
