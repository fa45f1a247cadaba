from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.utils.translation import gettext as _
from drf_spectacular.views import SpectacularAPIView

from apps.core.api.responses import error_body
from apps.core.api.views import HealthApi
from apps.shopify.views import app_root

urlpatterns = [
    # The hottest paths first (URL resolution tries patterns in order): storefront calls through
    # the app proxy and webhook deliveries.
    path("proxy/v1/api/", include(("apps.theme_extensions.urls_proxy", "widgets"), namespace="widgets")),
    path("proxy/v1/api/", include(("apps.shopify.storefront.urls", "proxy"), namespace="proxy")),
    path(
        "proxy/v1/api/",
        include(("apps.gamification.api.urls_proxy", "gamification_proxy"), namespace="gamification_proxy"),
    ),
    path("proxy/v1/api/", include(("apps.wallet.api.urls_proxy", "wallet_proxy"), namespace="wallet_proxy")),
    path("shopify/", include("apps.shopify.webhooks.urls")),
    path("shopify/flow/", include("apps.shopify.flow.urls")),
    path("", app_root, name="app_root"),
    path("admin/", admin.site.urls),
    path("healthz", HealthApi.as_view(), name="healthz"),
    path("v1/api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path("v1/api/", include(("apps.core.api.urls", "core"), namespace="core")),
    path("v1/api/", include(("apps.shopify.rewards.urls", "rewards"), namespace="rewards")),
    path("v1/api/", include(("apps.notifications.api.urls", "notifications"), namespace="notifications")),
    path("v1/api/", include(("apps.rfm.api.urls", "rfm_api"), namespace="rfm_api")),
    path(
        "v1/api/", include(("apps.theme_extensions.api.urls", "theme_extensions_api"), namespace="theme_extensions_api")
    ),
    path("v1/api/", include(("apps.gamification.api.urls", "gamification_api"), namespace="gamification_api")),
    path("v1/api/", include(("apps.wallet.api.urls", "wallet_api"), namespace="wallet_api")),
    path(
        "v1/api/",
        include(("apps.merchant_referrals.api.urls", "merchant_referrals_api"), namespace="merchant_referrals_api"),
    ),
    path("v1/api/", include(("apps.slack_community.api.urls", "slack_community_api"), namespace="slack_community_api")),
    path("v1/api/", include(("apps.multistore.api.urls", "multistore_api"), namespace="multistore_api")),
    path("app/widgets/", include("apps.theme_extensions.urls")),
    path("app/rfm/", include("apps.rfm.urls")),
    path("app/gamification/", include("apps.gamification.urls")),
    path("app/wallet/", include("apps.wallet.urls")),
    path("app/merchant-referrals/", include("apps.merchant_referrals.urls")),
    path("r/", include("apps.merchant_referrals.urls_public")),
    path("app/community/", include("apps.slack_community.urls")),
    path("slack/", include("apps.slack_community.urls_slack")),
    path("app/multi-store/", include("apps.multistore.urls")),
    path("app/", include("apps.shopify.urls")),
    path("wallet/", include("apps.wallet.urls_public")),
]


def handler404(request, exception=None):
    """Unknown API paths answer in the envelope; other pages get Django's page."""
    if request.path.startswith(("/v1/api/", "/proxy/")):
        return JsonResponse(error_body("not_found", _("Not found.")), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith(("/v1/api/", "/proxy/")):
        return JsonResponse(
            error_body("internal_error", _("Something went wrong on our side. It has been logged.")), status=500
        )
    from django.views.defaults import server_error

    return server_error(request)
