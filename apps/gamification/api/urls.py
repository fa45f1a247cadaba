from django.urls import path

from . import views

urlpatterns = [
    path("gamification/streak", views.StreakRecordApi.as_view(), name="streak"),
    path("team-leaderboards", views.TeamLeaderboardApi.as_view(), name="team-leaderboards"),
    path("gamification/badges", views.BadgeListApi.as_view(), name="badges"),
    path("gamification/badges/<str:badge_id>", views.BadgeDetailApi.as_view(), name="badge"),
    path("gamification/settings", views.SettingsApi.as_view(), name="settings"),
    path("gamification/teams", views.TeamListApi.as_view(), name="teams"),
    path("gamification/teams/<str:team_id>/members", views.TeamMembersApi.as_view(), name="team-members"),
    path("gamification/customers/<str:customer_id>", views.CustomerGamificationApi.as_view(), name="customer"),
]
