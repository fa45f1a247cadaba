"""Writes of the storefront widgets: configuration, impressions and clicks, the contributor registry."""

import logging
from collections import Counter

import redis
from django.db import connection, transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.ids import new_id
from apps.core.locales import LOCALES
from apps.core.models import ProgramSettings
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.redis import get_redis
from apps.core.streams import stream_append_on_commit, stream_name
from apps.core.tracking import track, track_on_commit
from apps.shopify.metafields import shop_config_sync_task

from . import registry
from .config import widget_config_clean
from .models import WidgetEventKind
from .rendering import widget_preview
from .selectors import content_key, theme_extension_config_get, theme_key, widget_content_forget_local

logger = logging.getLogger(__name__)


def register_widget_contributor(name: str, fn, *, lookup=None) -> None:
    """Plug a feature's shopper data into the widgets' answer under `contributions[name]`.

    Call from the feature's `AppConfig.ready()`; `fn(*, merchant, customer, locale)` returns a
    JSON-ready dict or None. A feature that reads the database per shopper gives `lookup`, an
    SQL expression read with the shopper's row. See `apps.theme_extensions.registry`."""
    registry.register(name, fn, lookup=lookup)


def _content_caches_clear(merchant_id: str) -> None:
    """Drop every locale's cached content so the next storefront request rebuilds it."""
    widget_content_forget_local(merchant_id)
    try:
        get_redis().delete(*(stream_name(merchant_id, content_key(merchant_id, locale)) for locale in LOCALES))
    except redis.RedisError as exc:
        # The entries expire by age (WIDGETS_CONTENT_TTL_SECONDS) anyway.
        logger.warning("widget content caches not cleared: %s", type(exc).__name__)


@transaction.atomic
def theme_extension_configure(*, merchant, actor, theme_extension_config: dict, locale: str) -> dict:
    """Validate and store one widget's configuration in `program_settings.theme_extension_config`,
    queue its copy to the shop metafield the blocks read, cache it in `theme:{merchant_id}:{locale}`,
    audit and track it; return the widget's preview for the locale."""
    widget_config = widget_config_clean(theme_extension_config)
    widget = widget_config["widget"]
    program, _created = ProgramSettings.objects.select_for_update().get_or_create(merchant=merchant)
    stored = dict(program.theme_extension_config or {})
    stored["widgets"] = {**(stored.get("widgets") or {}), widget: widget_config}
    stored["program"] = {"points_per_currency_unit": float(program.points_per_currency_unit)}
    program.theme_extension_config = stored
    program.save(update_fields=["theme_extension_config", "updated_at"])
    metadata = {
        "widget": widget,
        "placement": widget_config["placement"],
        "enabled": widget_config["enabled"],
        "variants": [v["id"] for v in widget_config["variants"]],
        "locale": locale,
    }
    audit_record(merchant=merchant, actor=actor, action="theme_extension_configured", target=program, metadata=metadata)
    stream_append_on_commit(
        merchant_id=merchant.pk,
        key=theme_key(merchant.pk, locale),
        data={"widget": widget, "theme_extension_config": widget_config},
    )
    merchant_id = merchant.pk
    transaction.on_commit(lambda: _content_caches_clear(merchant_id))
    transaction.on_commit(
        lambda: enqueue_unless_broker_down(shop_config_sync_task, kwargs={"merchant_id": merchant_id})
    )
    track_on_commit(
        "theme_extension_configured",
        merchant=merchant,
        distinct_id=str(getattr(actor, "pk", None) or merchant.pk),
        properties=metadata,
    )
    return widget_preview(widget_config=widget_config, locale=locale)


def theme_extension_preview(*, merchant, widget: str, locale: str) -> dict:
    """The stored (or default) configuration of a widget, rendered for a locale."""
    config = theme_extension_config_get(merchant=merchant)
    return widget_preview(widget_config=config["widgets"][widget], locale=locale)


UPSERT = """
INSERT INTO theme_widget_event_counts (id, merchant_id, widget, variant, placement, kind, day, count)
VALUES {values}
ON CONFLICT (merchant_id, widget, variant, placement, kind, day)
DO UPDATE SET count = theme_widget_event_counts.count + EXCLUDED.count
"""


def widget_events_record(*, merchant, visitor: str, events: list[dict], locale: str) -> int:
    """Count impressions and clicks per widget, variant, placement and day in one statement,
    and send `theme_widget_rendered` (impressions) and `theme_widget_clicked` to PostHog."""
    tally = Counter((e["widget"], e["variant"], e["placement"], e["kind"]) for e in events)
    if not tally:
        return 0
    day = timezone.now().date()
    rows, params = [], []
    # Sorted keys: two requests never lock the same rows in opposite orders.
    for (widget, variant, placement, kind), count in sorted(tally.items()):
        rows.append("(%s, %s, %s, %s, %s, %s, %s, %s)")
        params += [new_id("wev"), merchant.pk, widget, variant, placement, kind, day, count]
    with connection.cursor() as cursor:
        cursor.execute(UPSERT.format(values=", ".join(rows)), params)
    for (widget, variant, placement, kind), count in tally.items():
        event = "theme_widget_rendered" if kind == WidgetEventKind.IMPRESSION else "theme_widget_clicked"
        track(
            event,
            merchant=merchant,
            distinct_id=visitor,
            properties={"widget": widget, "variant": variant, "placement": placement, "count": count, "locale": locale},
        )
    return sum(tally.values())
