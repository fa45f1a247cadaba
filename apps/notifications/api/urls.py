"""Merchant API of notifications, mounted at `v1/api/`."""

from django.urls import path

from . import views

urlpatterns = [
    path("notifications/preferences", views.NotificationPreferencesApi.as_view(), name="preferences"),
    path("notifications/settings", views.NotificationSettingsApi.as_view(), name="settings"),
    path("notifications/stats", views.NotificationStatsApi.as_view(), name="stats"),
]
