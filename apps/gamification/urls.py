"""The gamification page of the embedded admin, mounted at /app/gamification/."""

from django.urls import path

from . import views

app_name = "gamification"

urlpatterns = [path("", views.gamification_page, name="page")]
