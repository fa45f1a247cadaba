"""Shop domain → Merchant, kept a short while per process for the hottest requests (webhook
intake, app-proxy storefront calls), which would otherwise spend a query on it every time.

Entries live `SHOP_CACHE_SECONDS`; unknown shops are never kept. Callers get a copy, so nothing
a request does to its merchant object leaks into the next request. A shop erased meanwhile
(`shop/redact`) makes the caller's insert fail its foreign key; it then calls `forget`.
"""

import copy

from apps.core.local_cache import LocalCache
from apps.core.models import Merchant

SHOP_CACHE_SECONDS = 30.0


class ShopDirectory:
    def __init__(self, ttl: float = SHOP_CACHE_SECONDS):
        self.entries = LocalCache(ttl=ttl)

    def merchant(self, shop_domain: str) -> Merchant | None:
        """The merchant of a verified shop domain, installed or not (None when unknown)."""
        merchant = self.entries.get(shop_domain)
        if merchant is None:
            found = Merchant.objects.filter(shop_domain=shop_domain).order_by()[:1]
            if not found:
                return None
            merchant = found[0]
            self.entries.put(shop_domain, merchant)
        return copy.copy(merchant)

    def forget(self, shop_domain: str) -> None:
        self.entries.forget(shop_domain)

    def clear(self) -> None:
        self.entries.clear()


shops = ShopDirectory()
