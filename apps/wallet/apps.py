from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WalletConfig(AppConfig):
    name = "apps.wallet"
    verbose_name = _("Apple and Google Wallet passes")

    def ready(self):
        from apps.theme_extensions.services import register_widget_contributor

        from . import receivers  # noqa: F401  (connects the ledger receiver)
        from .selectors import wallet_links_for_widget

        register_widget_contributor("wallet", wallet_links_for_widget)
