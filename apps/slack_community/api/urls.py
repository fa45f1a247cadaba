from django.urls import path

from . import views

urlpatterns = [
    path("slack/join", views.SlackJoinApi.as_view(), name="join"),
    path("slack/beta", views.SlackBetaApi.as_view(), name="beta"),
]
