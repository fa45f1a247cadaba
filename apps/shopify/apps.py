from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopifyConfig(AppConfig):
    name = "apps.shopify"
    verbose_name = _("Shopify edge")

    def ready(self):
        from . import checks, schema  # noqa: F401  (registers deploy checks and the OpenAPI scheme)
