from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopifyConfig(AppConfig):
    name = "apps.shopify"
    verbose_name = _("Shopify edge")

    def ready(self):
        from . import checks  # noqa: F401  (registers the deploy checks)
