"""Reads of the wallet feature."""

import functools
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from apps.slack_community.selectors import beta_feature_enabled_in_request

from .models import ExportStatus, PushStatus, WalletExport, WalletPass


def wallet_export_list(*, merchant, customer=None, limit: int = 50) -> list[WalletExport]:
    exports = WalletExport.objects.filter(merchant=merchant)
    if customer is not None:
        exports = exports.filter(customer=customer)
    return list(exports.order_by("-created_at")[:limit])


def wallet_export_stats(*, merchant, days: int = 30) -> dict:
    """Exports of the last `days` days per wallet and the success rate (the seeds' 90%+ metric),
    measured from `wallet_exports` in one grouped query."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        WalletExport.objects.filter(merchant=merchant, created_at__gte=since)
        .values("wallet_type")
        .annotate(total=Count("pk"), succeeded=Count("pk", filter=Q(status=ExportStatus.EXPORTED)))
    )
    by_type = {row["wallet_type"]: {"total": row["total"], "succeeded": row["succeeded"]} for row in rows}
    total = sum(row["total"] for row in by_type.values())
    succeeded = sum(row["succeeded"] for row in by_type.values())
    return {
        "days": days,
        "total": total,
        "succeeded": succeeded,
        "failed": total - succeeded,
        "success_rate": (succeeded / total) if total else None,
        "by_type": by_type,
    }


def wallet_pass_push_stats(*, merchant) -> dict:
    rows = WalletPass.objects.filter(merchant=merchant).values("push_status").annotate(count=Count("pk"))
    counts = dict.fromkeys(PushStatus.values, 0)
    counts.update({row["push_status"]: row["count"] for row in rows})
    return counts


def wallet_pass_failed_list(*, merchant, limit: int = 10) -> list[WalletPass]:
    return list(
        WalletPass.objects.filter(merchant=merchant, push_status=PushStatus.FAILED).order_by("-updated_at")[:limit]
    )


def wallet_links_for_widget(*, merchant, customer, locale: str) -> dict | None:
    """The storefront buttons' data (the rewards panel): endpoints and accessible labels. Google's
    button is listed only with the store's `google_wallet` beta flag (its exports need it)."""
    if customer is None:
        return None
    google = beta_feature_enabled_in_request(merchant, "google_wallet")
    buttons = [dict(button) for button in _button_labels(locale)]
    return {
        "export_path": "/apps/loyalnest/v1/api/wallet/export",
        "method": "POST",
        "buttons": buttons if google else buttons[:1],
    }


@functools.lru_cache(maxsize=64)
def _button_labels(locale: str) -> tuple[dict, ...]:
    """The buttons' texts in a locale, translated once per process (every widget request shows them)."""
    from django.utils.translation import gettext as _
    from django.utils.translation import override

    from apps.core.locales import django_language

    with override(django_language(locale)):
        return (
            {
                "wallet_type": "apple",
                "text": _("Add to Apple Wallet"),
                "aria_label": _("Export loyalty balance to Apple Wallet"),
            },
            {
                "wallet_type": "google",
                "text": _("Save to Google Wallet"),
                "aria_label": _("Export loyalty balance to Google Wallet"),
            },
        )
