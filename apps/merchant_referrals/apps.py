from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MerchantReferralsConfig(AppConfig):
    name = "apps.merchant_referrals"
    verbose_name = _("Merchant referral program")

    def ready(self):
        # Rewritten from PostgreSQL when a shop's public `loyalnest` copies are retired (issue 9).
        from apps.shopify.metafields import register_shop_metafield_writer

        from .tasks import merchant_referral_metafield_task

        register_shop_metafield_writer(merchant_referral_metafield_task)
