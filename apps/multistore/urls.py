"""The multi-store page of the embedded admin, mounted at /app/multi-store/."""

from django.urls import path

from . import views

app_name = "multistore"

urlpatterns = [path("", views.multistore_page, name="page")]
