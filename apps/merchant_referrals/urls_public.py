"""The public referral link `/r/<code>`, mounted at /r/."""

from django.urls import path

from . import views

app_name = "merchant_referrals_public"

urlpatterns = [path("<str:code>", views.referral_redirect, name="redirect")]
