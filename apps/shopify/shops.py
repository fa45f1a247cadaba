"""Shop domain → Merchant, kept a short while per process for the hottest requests (webhook
intake, app-proxy storefront calls), which would otherwise spend a query on it every time.

Entries live `SHOP_CACHE_SECONDS`; unknown shops are never kept. Callers get a copy, so nothing
a request does to its merchant object leaks into the next request. A shop erased meanwhile
(`shop/redact`) makes the caller's insert fail its foreign key; it then calls `forget`.
"""

import copy
import time

from apps.core.models import Merchant

SHOP_CACHE_SECONDS = 30.0
MAX_ENTRIES = 10_000


class ShopDirectory:
    def __init__(self, ttl: float = SHOP_CACHE_SECONDS):
        self.ttl = ttl
        self.entries: dict[str, tuple[Merchant, float]] = {}

    def merchant(self, shop_domain: str) -> Merchant | None:
        """The merchant of a verified shop domain, installed or not (None when unknown)."""
        now = time.monotonic()
        cached = self.entries.get(shop_domain)
        if cached is not None and cached[1] > now:
            return copy.copy(cached[0])
        merchant = Merchant.objects.filter(shop_domain=shop_domain).order_by()[:1]
        merchant = merchant[0] if merchant else None
        if merchant is not None:
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.clear()
            self.entries[shop_domain] = (merchant, now + self.ttl)
            return copy.copy(merchant)
        return None

    def forget(self, shop_domain: str) -> None:
        self.entries.pop(shop_domain, None)

    def clear(self) -> None:
        self.entries.clear()


shops = ShopDirectory()
