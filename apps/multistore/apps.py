from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MultistoreConfig(AppConfig):
    name = "apps.multistore"
    verbose_name = _("Multi-store sync")

    def ready(self):
        from . import ledger  # noqa: F401  (connects the shared-ledger receivers)
