from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MultistoreConfig(AppConfig):
    name = "apps.multistore"
    verbose_name = _("Multi-store sync")

    def ready(self):
        from apps.core.services import referral_resolver_register

        from . import ledger  # noqa: F401  (connects the shared-ledger receivers)
        from .services import shared_referral_resolve

        # Shared referral codes: a code from one member store is accepted in every other one.
        referral_resolver_register("multistore", shared_referral_resolve)
