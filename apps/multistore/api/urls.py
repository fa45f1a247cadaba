from django.urls import path

from . import views

urlpatterns = [
    path("points/sync", views.PointsSyncApi.as_view(), name="points-sync"),
    path("multi-store/group", views.StoreGroupApi.as_view(), name="group"),
    path("multi-store/invites", views.StoreGroupInviteApi.as_view(), name="invite-create"),
    path("multi-store/invites/accept", views.StoreGroupAcceptApi.as_view(), name="invite-accept"),
    path("multi-store/leave", views.StoreGroupLeaveApi.as_view(), name="leave"),
    path("multi-store/sharing", views.StoreGroupSharingApi.as_view(), name="sharing"),
    path("multi-store/reviews/resolve", views.LinkReviewResolveApi.as_view(), name="review-resolve"),
]
