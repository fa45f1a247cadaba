from django.urls import path

from . import views

urlpatterns = [
    path("health", views.HealthApi.as_view(), name="health"),
    path("locales", views.LocaleListApi.as_view(), name="locales"),
    path("me", views.MeApi.as_view(), name="me"),
    path("customers", views.CustomerListApi.as_view(), name="customer-list"),
    path("customers/<str:customer_id>", views.CustomerDetailApi.as_view(), name="customer-detail"),
    path(
        "customers/<str:customer_id>/transactions",
        views.CustomerTransactionListApi.as_view(),
        name="customer-transactions",
    ),
    path("points/adjust", views.PointsAdjustApi.as_view(), name="points-adjust"),
    # points/redeem is served by apps.shopify.rewards (a reward is a Shopify discount code).
    path("points/reverse", views.PointsReverseApi.as_view(), name="points-reverse"),
    path("rbac/roles", views.RoleListApi.as_view(), name="rbac-roles"),
    path("rbac/staff/<str:staff_id>", views.StaffRoleApi.as_view(), name="rbac-staff-role"),
]
