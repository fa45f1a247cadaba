"""The RFM page of the embedded admin, mounted at /app/rfm/."""

from django.urls import path

from . import views

app_name = "rfm"

urlpatterns = [path("", views.rfm_page, name="page")]
