from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GamificationConfig(AppConfig):
    name = "apps.gamification"
    verbose_name = _("Advanced gamification")

    def ready(self):
        from apps.core.signals import ledger_entries_written, orders_synced
        from apps.shopify.flow import register_flow_action
        from apps.theme_extensions.services import register_widget_contributor

        from . import tasks  # noqa: F401  (Celery task registration)
        from .awarding import on_ledger_entries_written, on_orders_synced
        from .flow import ACTION_AWARD_BADGE, flow_award_badge
        from .selectors import widget_contribution, widget_lookup

        # Receivers run inside the writing transaction with whole batches (apps/core/signals.py).
        orders_synced.connect(on_orders_synced, dispatch_uid="gamification.orders_synced")
        ledger_entries_written.connect(on_ledger_entries_written, dispatch_uid="gamification.ledger_entries_written")
        register_flow_action(ACTION_AWARD_BADGE, flow_award_badge)
        # Its per-shopper reads ride on the app proxy's shopper lookup (one query a widget request).
        register_widget_contributor("gamification", widget_contribution, lookup=widget_lookup)
