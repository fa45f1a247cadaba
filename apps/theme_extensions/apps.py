from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ThemeExtensionsConfig(AppConfig):
    name = "apps.theme_extensions"
    verbose_name = _("Theme app extensions")
