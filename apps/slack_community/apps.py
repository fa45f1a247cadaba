from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlackCommunityConfig(AppConfig):
    name = "apps.slack_community"
    verbose_name = _("LoyalNest Collective (Slack)")
