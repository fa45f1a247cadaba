"""Reads behind the storefront widgets and the merchant page. Callers are in the merchant's scope."""

import json
import logging
import math
import time

import redis
from django.conf import settings
from django.db.models import Sum

from apps.core.local_cache import LocalCache
from apps.core.locales import is_rtl
from apps.core.models import ProgramSettings, Reward, VipTier, localized
from apps.core.redis import get_redis
from apps.core.streams import stream_append, stream_name

from .config import WIDGETS, default_widget_config
from .experiments import two_proportion_test, variant_assign
from .models import WidgetEventCount, WidgetEventKind
from .registry import widget_contributions
from .rendering import localized_text, translate

logger = logging.getLogger(__name__)


def content_key(merchant_id: str, locale: str) -> str:
    return f"content:{merchant_id}:{locale}"


def theme_key(merchant_id: str, locale: str) -> str:
    return f"theme:{merchant_id}:{locale}"


def theme_extension_config_get(*, merchant) -> dict:
    """The stored configuration with every widget present (defaults for the unconfigured)."""
    program = ProgramSettings.objects.filter(merchant=merchant).first()
    stored = (program.theme_extension_config if program else None) or {}
    widgets = stored.get("widgets") or {}
    return {
        "widgets": {name: widgets.get(name) or default_widget_config(name) for name in WIDGETS},
        "program": {
            "points_per_currency_unit": float(program.points_per_currency_unit) if program else 1.0,
        },
    }


def widget_content_build(*, merchant, locale: str) -> dict:
    """The merchant's widget content for a locale, from PostgreSQL (what the cache holds)."""
    config = theme_extension_config_get(merchant=merchant)
    tiers = (
        VipTier.objects.filter(merchant=merchant)
        .order_by("min_lifetime_points")
        .values("id", "name", "min_lifetime_points")
    )
    rewards = (
        Reward.objects.filter(merchant=merchant, is_active=True)
        .order_by("points_cost", "id")
        .values("id", "name", "points_cost")[: settings.WIDGETS_CONTENT_REWARDS]
    )
    return {
        "built_at": time.time(),
        "locale": locale,
        "dir": "rtl" if is_rtl(locale) else "ltr",
        "points_per_currency_unit": config["program"]["points_per_currency_unit"],
        "tiers": [
            {"id": t["id"], "name": localized(t["name"], locale), "min_lifetime_points": t["min_lifetime_points"]}
            for t in tiers
        ],
        "rewards": [
            {
                "id": r["id"],
                "name": localized(r["name"], locale),
                "points_cost": r["points_cost"],
                "cost_text": translate(locale, "points_cost", points=r["points_cost"]),
            }
            for r in rewards
        ],
        "widgets": {
            name: {
                "enabled": widget["enabled"],
                "placement": widget["placement"],
                "variants": widget["variants"],
                "texts": {key: localized_text(widget, key, locale) for key in widget.get("texts", {})},
            }
            for name, widget in config["widgets"].items()
        },
    }


# Each web process keeps the content it read a few seconds (`apps.core.local_cache`): most
# storefront requests then skip the stream read and its JSON decoding.
_local_content = LocalCache()


def widget_content_forget_local(merchant_id: str) -> None:
    """Drop this process's copies of a merchant's content (every locale)."""
    _local_content.forget_where(lambda key: key[0] == merchant_id)


def widget_content_get(*, merchant, locale: str) -> dict:
    """The content from this process's copy while fresh, else from the Redis stream
    `content:{merchant_id}:{locale}` while fresh, else rebuilt from PostgreSQL and appended.
    Redis down or hung: answered from PostgreSQL (E5). Callers must not change it."""
    content = _local_content.get((merchant.pk, locale))
    if content is None:
        content = _widget_content_shared(merchant=merchant, locale=locale)
        _local_content.put((merchant.pk, locale), content)
    return content


def _widget_content_shared(*, merchant, locale: str) -> dict:
    key = content_key(merchant.pk, locale)
    try:
        entries = get_redis().xrevrange(stream_name(merchant.pk, key), count=1)
    except redis.RedisError as exc:
        logger.warning("widget content read from the database: %s", type(exc).__name__)
        return widget_content_build(merchant=merchant, locale=locale)
    if entries:
        cached = json.loads(entries[0][1]["data"])
        if time.time() - cached.get("built_at", 0) < settings.WIDGETS_CONTENT_TTL_SECONDS:
            return cached
    content = widget_content_build(merchant=merchant, locale=locale)
    stream_append(merchant_id=merchant.pk, key=key, data=content)
    return content


def _tier_progress(tiers: list[dict], lifetime: int) -> tuple[dict | None, dict | None]:
    current, upcoming = None, None
    for tier in tiers:
        if tier["min_lifetime_points"] <= lifetime:
            current = tier
        elif upcoming is None:
            upcoming = tier
    if upcoming is None:
        return current, None
    floor = current["min_lifetime_points"] if current else 0
    span = max(upcoming["min_lifetime_points"] - floor, 1)
    percent = math.floor(100 * (lifetime - floor) / span)
    return current, {
        "id": upcoming["id"],
        "name": upcoming["name"],
        "points_needed": upcoming["min_lifetime_points"] - lifetime,
        "progress_percent": max(0, min(100, percent)),
    }


def _next_reward(rewards: list[dict], balance: int) -> dict | None:
    """The cheapest reward the shopper cannot afford yet, else the dearest they can."""
    for reward in rewards:
        if reward["points_cost"] > balance:
            return {**reward, "points_needed": reward["points_cost"] - balance}
    return {**rewards[-1], "points_needed": 0} if rewards else None


def assignments_for(content: dict, visitor: str) -> dict:
    """Each A/B-tested widget's variant for this visitor (the script computes the same)."""
    result = {}
    for name, widget in content["widgets"].items():
        if len(widget["variants"]) > 1:
            variant = variant_assign(widget=name, visitor=visitor, variants=widget["variants"])
            result[name] = {"variant": variant["id"], "placement": variant["placement"]}
    return result


def shopper_widget_get(*, merchant, customer, locale: str) -> dict:
    """Balance, tier and progress to the next one, next reward and the registered features'
    contributions (badges, streak, …) for a logged-in shopper. Reads no table when the content
    cache is warm: the customer row is the one the proxy authentication loaded."""
    content = widget_content_get(merchant=merchant, locale=locale)
    balance, lifetime = customer.points_balance, customer.lifetime_points
    current, upcoming = _tier_progress(content["tiers"], lifetime)
    if customer.vip_tier_id:
        current = next((t for t in content["tiers"] if t["id"] == customer.vip_tier_id), current)
    reward = _next_reward(content["rewards"], balance)
    text = {}
    if current:
        text["tier"] = translate(locale, "tier_label", tier=current["name"])
    if upcoming:
        text["next_tier"] = translate(locale, "next_tier", tier=upcoming["name"], points=upcoming["points_needed"])
    else:
        text["next_tier"] = translate(locale, "top_tier") if current else ""
    if reward:
        text["next_reward"] = translate(locale, "next_reward", reward=reward["name"])
    return {
        "content": content,
        "shopper": {
            "points_balance": balance,
            "lifetime_points": lifetime,
            "vip_tier": {"id": current["id"], "name": current["name"]} if current else None,
            "next_tier": upcoming,
            "next_reward": reward,
        },
        "contributions": widget_contributions(merchant=merchant, customer=customer, locale=locale),
        "assignments": assignments_for(content, customer.shopify_customer_id),
        "text": text,
    }


def widget_experiment_results(*, merchant) -> dict:
    """Per widget: impressions, clicks and click rate per variant, and each variant compared
    with the first (control) by a two-proportion z-test."""
    config = theme_extension_config_get(merchant=merchant)
    rows = (
        WidgetEventCount.objects.filter(merchant=merchant)
        .values("widget", "variant", "kind")
        .annotate(total=Sum("count"))
    )
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        counts.setdefault((row["widget"], row["variant"]), {})[row["kind"]] = row["total"]
    results = {}
    for name in WIDGETS:
        variants = config["widgets"][name]["variants"] or [{"id": "default", "placement": "", "weight": 100}]
        ids = [v["id"] for v in variants] + sorted(
            {variant for (widget, variant) in counts if widget == name} - {v["id"] for v in variants}
        )
        lines = []
        for variant_id in ids:
            seen = counts.get((name, variant_id), {})
            impressions = seen.get(WidgetEventKind.IMPRESSION, 0)
            clicks = seen.get(WidgetEventKind.CLICK, 0)
            lines.append(
                {
                    "variant": variant_id,
                    "placement": next((v["placement"] for v in variants if v["id"] == variant_id), ""),
                    "impressions": impressions,
                    "clicks": clicks,
                    "click_rate": clicks / impressions if impressions else None,
                    "comparison": None,
                }
            )
        control = lines[0]
        for line in lines[1:]:
            test = two_proportion_test(control["clicks"], control["impressions"], line["clicks"], line["impressions"])
            if test is not None:
                line["comparison"] = {"z": test.z, "p_value": test.p_value, "significant": test.significant}
        results[name] = lines
    return results
