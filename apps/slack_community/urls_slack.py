"""Slack's calls to LoyalNest, mounted at /slack/."""

from django.urls import path

from . import events

app_name = "slack_events"

urlpatterns = [path("events", events.slack_events, name="events")]
