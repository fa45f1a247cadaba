from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RfmConfig(AppConfig):
    name = "apps.rfm"
    verbose_name = _("Advanced RFM analytics")

    def ready(self):
        # Rewritten from PostgreSQL when a shop's public `loyalnest` copies are retired (issue 9).
        from apps.shopify.metafields import register_shop_metafield_writer

        from .tasks import rfm_benchmarks_metafield_sync_task

        register_shop_metafield_writer(rfm_benchmarks_metafield_sync_task)
