from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlackCommunityConfig(AppConfig):
    name = "apps.slack_community"
    verbose_name = _("LoyalNest Collective (Slack)")

    def ready(self):
        # Rewritten from PostgreSQL when a shop's public `loyalnest` copies are retired (issue 9).
        from apps.shopify.metafields import register_shop_metafield_writer

        from .tasks import slack_community_metafields_write_task

        register_shop_metafield_writer(slack_community_metafields_write_task)
