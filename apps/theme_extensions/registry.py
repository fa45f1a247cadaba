"""The widget contributor registry: features built later plug their data into the widgets.

A feature app registers from its `AppConfig.ready()` (through `apps.theme_extensions.services`):

    register_widget_contributor("badges", badges_for_widget)

where `badges_for_widget(*, merchant, customer, locale) -> dict | None` returns JSON-ready data
for the shopper (None: nothing to show). It runs inside the merchant's scope on every widget
request, so it must be quick (a cached read). A contributor that raises is logged and left out:
one feature's failure never breaks the widget.
"""

import logging
import re
from collections.abc import Callable

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_contributors: dict[str, Callable] = {}


def register(name: str, fn: Callable) -> None:
    if not NAME.match(name):
        raise ValueError(f"invalid widget contributor name: {name!r}")
    existing = _contributors.get(name)
    if existing is not None and existing is not fn:
        raise ValueError(f"widget contributor {name!r} is already registered")
    _contributors[name] = fn


def unregister(name: str) -> None:
    _contributors.pop(name, None)


def registered() -> tuple[str, ...]:
    return tuple(sorted(_contributors))


def widget_contributions(*, merchant, customer, locale: str) -> dict:
    result = {}
    for name, fn in sorted(_contributors.items()):
        try:
            value = fn(merchant=merchant, customer=customer, locale=locale)
        except Exception:
            logger.warning("widget contributor %s failed", name, exc_info=True)
            continue
        if value is not None:
            result[name] = value
    return result
