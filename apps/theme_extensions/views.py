"""The embedded admin page of the storefront widgets, mounted at /app/widgets/."""

from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from apps.core.locales import LOCALES, normalize_locale
from apps.core.tenancy import merchant_scope
from apps.shopify.views import EmbeddedSession, _base_context, _carried_query, embedded_page, feature_navigation

from .config import ALL_PLACEMENTS, COLOR_KEYS, PLACEMENTS, TEXT_KEYS, WIDGETS
from .rendering import extension_root, widget_preview
from .selectors import theme_extension_config_get, widget_experiment_results

WIDGET_LABELS = {
    "rewards_panel": _("Rewards panel"),
    "points_display": _("Points display"),
    "sticky_bar": _("Sticky bar"),
    "post_purchase": _("Post-purchase widget"),
}
PLACEMENT_LABELS = {
    "cart_page": _("Cart page"),
    "product_page": _("Product page"),
    "home_page": _("Home page"),
    "account_page": _("Account page"),
    "collection_page": _("Collection page"),
    "order_status_page": _("Order page"),
    "all_pages": _("Every page"),
}
COLOR_LABELS = {
    "accent": _("Accent"),
    "background": _("Background"),
    "text": _("Text"),
    "button_text": _("Button text"),
}


@embedded_page
def widgets_page(request, session: EmbeddedSession):
    """Each widget: its configuration form, a live preview per locale, A/B setup and results."""
    merchant = session.merchant
    preview_locale = normalize_locale(request.GET.get("preview_locale")) or session.locale
    with merchant_scope(merchant):
        config = theme_extension_config_get(merchant=merchant)
        results = widget_experiment_results(merchant=merchant)
    widgets = []
    for name in WIDGETS:
        widget_config = config["widgets"][name]
        widgets.append(
            {
                "name": name,
                "label": WIDGET_LABELS[name],
                "config": widget_config,
                "placements": [(p, PLACEMENT_LABELS[p]) for p in PLACEMENTS[name]],
                "text_keys": TEXT_KEYS[name],
                "texts": {key: widget_config["texts"].get(key, {}).get(preview_locale, "") for key in TEXT_KEYS[name]},
                "colors": [(key, COLOR_LABELS[key], widget_config["colors"][key]) for key in COLOR_KEYS],
                "preview": widget_preview(widget_config=widget_config, locale=preview_locale),
                "results": results[name],
            }
        )
    context = {
        **_base_context(session.locale),
        "merchant": merchant,
        "widgets": widgets,
        "locales": LOCALES,
        "preview_locale": preview_locale,
        "placement_labels": {key: str(label) for key, label in PLACEMENT_LABELS.items()},
        "all_placements": ALL_PLACEMENTS,
        # The extension's own stylesheet, so the preview looks as on the storefront.
        "widget_css": mark_safe((extension_root() / "assets" / "loyalnest-widgets.css").read_text(encoding="utf-8")),  # noqa: S308  # nosec B703  # our own CSS file shipped in the repo, no input
        "features": feature_navigation(),
        "query": _carried_query(request),
    }
    return render(request, "theme_extensions/widgets_page.html", context)
