from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopifyConfig(AppConfig):
    name = "apps.shopify"
    verbose_name = _("Shopify edge")

    def ready(self):
        # Deploy checks, the OpenAPI scheme, metafield and Flow Celery tasks, the core's Flow actions.
        from . import checks, flow, metafields, schema  # noqa: F401
        from .webhooks import tasks as webhook_tasks  # noqa: F401  (registers the webhook Celery tasks)
