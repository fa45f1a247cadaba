"""What a storefront widget's configuration may contain, and its validation (pure, no database).

`program_settings.theme_extension_config` holds every widget's configuration:

    {"widgets": {"rewards_panel": {"widget": "rewards_panel", "placement": "cart_page",
                                   "texts": {"title": {"en": "Rewards", "ar": "المكافآت"}},
                                   "colors": {"accent": "#1f5199", ...},
                                   "variants": [{"id": "a", "placement": "cart_page", "weight": 50}, ...]},
                 ...},
     "program": {"points_per_currency_unit": 1.0}}

The API receives one widget's object at a time (the seeds' `{"widget": …, "placement": …}`).
"""

import re

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.core.locales import LOCALES

WIDGETS = ("rewards_panel", "points_display", "sticky_bar", "post_purchase")
PLACEMENTS = {
    "rewards_panel": ("cart_page", "product_page", "home_page", "account_page", "collection_page"),
    "points_display": ("product_page",),
    "sticky_bar": ("all_pages", "home_page", "product_page", "cart_page", "collection_page"),
    "post_purchase": ("order_status_page", "account_page"),
}
ALL_PLACEMENTS = tuple(dict.fromkeys(p for places in PLACEMENTS.values() for p in places))
TEXT_KEYS = {
    "rewards_panel": ("title", "cta"),
    "points_display": ("title",),
    "sticky_bar": ("cta",),
    "post_purchase": ("title", "cta"),
}
COLOR_KEYS = ("accent", "background", "text", "button_text")
DEFAULT_COLORS = {"accent": "#1f5199", "background": "#ffffff", "text": "#1a1a1a", "button_text": "#ffffff"}
MIN_CONTRAST = 4.5  # WCAG 2.1 AA for normal text
MAX_VARIANTS = 4
MAX_TEXT_LENGTH = 120
HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
VARIANT_ID = re.compile(r"^[a-z0-9_-]{1,20}$")
CONFIG_KEYS = frozenset({"widget", "placement", "enabled", "texts", "colors", "variants"})


def _fail(field: str, message) -> None:
    raise serializers.ValidationError({field: [message]})


def normalize_hex(value: str) -> str:
    """`#abc` → `#aabbcc`, lower case (Liquid checks for 7 characters)."""
    value = value.lower()
    if len(value) == 4:
        value = "#" + "".join(ch * 2 for ch in value[1:])
    return value


def relative_luminance(color: str) -> float:
    """WCAG 2.1 relative luminance of a `#rrggbb` colour."""
    channels = []
    for index in (1, 3, 5):
        c = int(color[index : index + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _texts(widget: str, value) -> dict:
    if not isinstance(value, dict):
        _fail("texts", _("Enter the texts as an object keyed by text name."))
    allowed = TEXT_KEYS[widget]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        _fail("texts", _("This widget has no text named %(names)s.") % {"names": ", ".join(unknown)})
    cleaned = {}
    for key, per_locale in value.items():
        if not isinstance(per_locale, dict) or not per_locale:
            _fail("texts", _("Enter each text as an object keyed by locale."))
        bad_locales = sorted(set(per_locale) - set(LOCALES))
        if bad_locales:
            _fail("texts", _("Unknown locale: %(locales)s.") % {"locales": ", ".join(bad_locales)})
        for text in per_locale.values():
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_LENGTH:
                _fail(
                    "texts",
                    _("Each text must be between 1 and %(max)s characters.") % {"max": MAX_TEXT_LENGTH},
                )
        cleaned[key] = {locale: text.strip() for locale, text in per_locale.items()}
    return cleaned


def _colors(value) -> dict:
    if not isinstance(value, dict):
        _fail("colors", _("Enter the colours as an object."))
    unknown = sorted(set(value) - set(COLOR_KEYS))
    if unknown:
        _fail("colors", _("Unknown colour: %(names)s.") % {"names": ", ".join(unknown)})
    for color in value.values():
        if not isinstance(color, str) or not HEX_COLOR.match(color):
            _fail("colors", _("Enter colours as hex values such as #1f5199."))
    colors = {**DEFAULT_COLORS, **{key: normalize_hex(color) for key, color in value.items()}}
    for foreground, background in (("text", "background"), ("button_text", "accent")):
        ratio = contrast_ratio(colors[foreground], colors[background])
        if ratio < MIN_CONTRAST:
            _fail(
                "colors",
                _(
                    "The contrast between %(foreground)s and %(background)s is %(ratio)s:1; "
                    "WCAG AA needs at least 4.5:1."
                )
                % {"foreground": foreground, "background": background, "ratio": f"{ratio:.2f}"},
            )
    return colors


def _variants(widget: str, value) -> list[dict]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_VARIANTS:
        _fail("variants", _("Enter between 1 and %(max)s variants.") % {"max": MAX_VARIANTS})
    seen, cleaned = set(), []
    for variant in value:
        if not isinstance(variant, dict) or set(variant) != {"id", "placement", "weight"}:
            _fail("variants", _("Each variant needs exactly an id, a placement and a weight."))
        variant_id, placement, weight = variant["id"], variant["placement"], variant["weight"]
        if not isinstance(variant_id, str) or not VARIANT_ID.match(variant_id) or variant_id in seen:
            _fail("variants", _("Variant ids must be unique short names (a-z, 0-9, - and _)."))
        if placement not in PLACEMENTS[widget]:
            _fail("variants", _("This placement is not available for this widget."))
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            _fail("variants", _("Each weight must be a whole number from 0 to 100."))
        seen.add(variant_id)
        cleaned.append({"id": variant_id, "placement": placement, "weight": weight})
    if sum(v["weight"] for v in cleaned) != 100:
        _fail("variants", _("The variants' weights must add up to 100."))
    return cleaned


def widget_config_clean(value) -> dict:
    """Validate one widget's configuration; return it normalised (raises ValidationError)."""
    if not isinstance(value, dict):
        _fail("theme_extension_config", _("Send the configuration as a JSON object."))
    unknown = sorted(set(value) - CONFIG_KEYS)
    if unknown:
        _fail("theme_extension_config", _("Unknown setting: %(names)s.") % {"names": ", ".join(unknown)})
    widget = value.get("widget")
    if widget not in WIDGETS:
        _fail("widget", _("Choose one of the widgets: %(names)s.") % {"names": ", ".join(WIDGETS)})
    placement = value.get("placement")
    if placement not in PLACEMENTS[widget]:
        _fail(
            "placement",
            _("Choose one of this widget's placements: %(names)s.") % {"names": ", ".join(PLACEMENTS[widget])},
        )
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        _fail("enabled", _("Enter true or false."))
    variants = _variants(widget, value["variants"]) if "variants" in value else []
    return {
        "widget": widget,
        "placement": placement,
        "enabled": enabled,
        "texts": _texts(widget, value.get("texts", {})),
        "colors": _colors(value.get("colors", {})),
        "variants": variants,
    }


def default_widget_config(widget: str) -> dict:
    return {
        "widget": widget,
        "placement": PLACEMENTS[widget][0],
        "enabled": True,
        "texts": {},
        "colors": dict(DEFAULT_COLORS),
        "variants": [],
    }
