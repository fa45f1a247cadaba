from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MerchantReferralsConfig(AppConfig):
    name = "apps.merchant_referrals"
    verbose_name = _("Merchant referral program")
