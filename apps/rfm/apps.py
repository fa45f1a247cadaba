from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RfmConfig(AppConfig):
    name = "apps.rfm"
    verbose_name = _("Advanced RFM analytics")
