"""The widget contributor registry: features built later plug their data into the widgets.

A feature app registers from its `AppConfig.ready()` (through `apps.theme_extensions.services`):

    register_widget_contributor("badges", badges_for_widget)

where `badges_for_widget(*, merchant, customer, locale) -> dict | None` returns JSON-ready data
for the shopper (None: nothing to show). It runs inside the merchant's scope on every widget
request, so it must be quick. A contributor that raises is logged and left out: one feature's
failure never breaks the widget.

A contributor that reads the database per shopper registers a `lookup` instead of querying:
`lookup(merchant) -> (sql, params)`, one SQL expression over the shopper's row (alias `u`:
`u.id`, `u.merchant_id`, …) with named parameters prefixed by the contributor's name. The app
proxy evaluates every lookup in the same statement that finds the shopper
(`customer_get_or_create_by_shopify_id(..., also=...)`), so a widget request makes one query
however many features contribute, and the value reaches the contributor as `looked_up=`. Where
no value was looked up (a shopper created by this request, a direct call), the contributor is
called without `looked_up` and reads for itself: the same expression through
`apps.core.services.shopper_expression_get`.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Contributor:
    fn: Callable
    lookup: Callable | None = None


_contributors: dict[str, Contributor] = {}


def register(name: str, fn: Callable, *, lookup: Callable | None = None) -> None:
    if not NAME.match(name):
        raise ValueError(f"invalid widget contributor name: {name!r}")
    existing = _contributors.get(name)
    if existing is not None and existing.fn is not fn:
        raise ValueError(f"widget contributor {name!r} is already registered")
    _contributors[name] = Contributor(fn=fn, lookup=lookup)


def unregister(name: str) -> None:
    _contributors.pop(name, None)


def registered() -> tuple[str, ...]:
    return tuple(sorted(_contributors))


def shopper_lookups(merchant) -> dict[str, tuple[str, dict]]:
    """Every contributor's SQL expression and parameters for this merchant's shopper lookup."""
    lookups = {}
    for name, contributor in _contributors.items():
        if contributor.lookup is None:
            continue
        try:
            sql, params = contributor.lookup(merchant)
            if any(not key.startswith(f"{name}_") for key in params):
                raise ValueError(f"widget contributor {name!r}: lookup parameters must start with '{name}_'")
        except Exception:
            # Left out of the lookup: the contributor then reads for itself.
            logger.warning("widget contributor %s lookup failed", name, exc_info=True)
            continue
        lookups[name] = (sql, params)
    return lookups


def widget_contributions(*, merchant, customer, locale: str) -> dict:
    looked_up = getattr(customer, "looked_up", None) or {}
    result = {}
    for name, contributor in sorted(_contributors.items()):
        extra = {"looked_up": looked_up[name]} if contributor.lookup is not None and name in looked_up else {}
        try:
            value = contributor.fn(merchant=merchant, customer=customer, locale=locale, **extra)
        except Exception:
            logger.warning("widget contributor %s failed", name, exc_info=True)
            continue
        if value is not None:
            result[name] = value
    return result
