"""The merchant referrals page of the embedded admin, mounted at /app/merchant-referrals/."""

from django.urls import path

from . import views

app_name = "merchant_referrals"

urlpatterns = [path("", views.merchant_referrals_page, name="page")]
