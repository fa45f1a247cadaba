"""Server-side rendering of the widgets, mirroring the extension's Liquid blocks.

The storefront strings are the extension's own `locales/*.json` (one source for Liquid, the
preview and the app-proxy answers); merchant texts from the configuration win over them.
"""

import json
import re
from functools import cache
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string

from apps.core.locales import DEFAULT_LOCALE, is_rtl

from .config import DEFAULT_COLORS

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SAMPLE = {"points_balance": 1250, "earn": 25, "tier": "Gold", "next_tier": "Platinum", "points_needed": 750}


def extension_root() -> Path:
    return Path(settings.BASE_DIR) / "extensions" / "loyalnest-widgets"


@cache
def storefront_strings(locale: str) -> dict[str, str]:
    """The extension's `loyalnest.*` strings for a locale (English for anything missing)."""
    directory = extension_root() / "locales"
    english = json.loads((directory / "en.default.json").read_text(encoding="utf-8"))["loyalnest"]
    if locale == DEFAULT_LOCALE:
        return english
    path = directory / f"{locale}.json"
    own = json.loads(path.read_text(encoding="utf-8"))["loyalnest"] if path.exists() else {}
    return {**english, **own}


def translate(locale: str, key: str, **values) -> str:
    """Liquid's `t` filter: the string with `{{ name }}` placeholders filled in."""
    text = storefront_strings(locale)[key]
    return PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), match.group(0))), text)


def localized_text(widget_config: dict, key: str, locale: str) -> str:
    """A merchant text for the locale, else its language, else English, else empty."""
    texts = (widget_config or {}).get("texts", {}).get(key) or {}
    return texts.get(locale) or texts.get(locale.split("-")[0]) or texts.get("en") or ""


def widget_preview(*, widget_config: dict, locale: str, sample: dict | None = None) -> dict:
    """The widget's HTML for a locale, as the storefront shows it to a logged-in shopper."""
    widget = widget_config["widget"]
    sample = {**SAMPLE, **(sample or {})}
    strings = storefront_strings(locale)
    title = localized_text(widget_config, "title", locale)
    if widget == "points_display":
        title = title.replace("{points}", str(sample["earn"])) if title else ""
    colors = {**DEFAULT_COLORS, **widget_config.get("colors", {})}
    context = {
        "widget": widget,
        "css_class": widget.replace("_", "-"),
        "widget_id": f"loyalnest-preview-{widget}",
        "locale": locale,
        "dir": "rtl" if is_rtl(locale) else "ltr",
        "placement": widget_config.get("placement", ""),
        "style": (
            f"--ln-accent: {colors['accent']}; --ln-bg: {colors['background']}; "
            f"--ln-text: {colors['text']}; --ln-button-text: {colors['button_text']};"
        ),
        "t": strings,
        "title": title,
        "cta": localized_text(widget_config, "cta", locale),
        "balance": sample["points_balance"],
        "earn_text": title or translate(locale, "earn_points", points=sample["earn"]),
        "earned_text": translate(locale, "earned_points", points=sample["earn"]),
        "tier_text": translate(locale, "tier_label", tier=sample["tier"]),
        "next_tier_text": translate(locale, "next_tier", tier=sample["next_tier"], points=sample["points_needed"]),
        "progress_percent": 40,
    }
    html = render_to_string(f"theme_extensions/widgets/{widget}.html", context)
    return {"widget": widget, "locale": locale, "dir": context["dir"], "html": html.strip()}
