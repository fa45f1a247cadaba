"""The httpx client every call to Shopify goes through: explicit timeouts, and — when
SHOPIFY_API_BASE_URL is set (tests, local development) — requests for
`https://{shop}.myshopify.com/...` routed to that base URL with the shop in a header."""

from functools import lru_cache

import httpx
from django.conf import settings

SHOP_HEADER = "X-LoyalNest-Shop-Domain"


class _BaseUrlTransport(httpx.HTTPTransport):
    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base = httpx.URL(base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        shop = request.url.host
        request.headers[SHOP_HEADER] = shop
        request.url = request.url.copy_with(scheme=self.base.scheme, host=self.base.host, port=self.base.port)
        return super().handle_request(request)


@lru_cache(maxsize=4)
def _client(base_url: str, connect: float, read: float) -> httpx.Client:
    timeout = httpx.Timeout(read, connect=connect)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    if base_url:
        return httpx.Client(transport=_BaseUrlTransport(base_url, limits=limits), timeout=timeout)
    return httpx.Client(timeout=timeout, limits=limits)


def shopify_http_client() -> httpx.Client:
    return _client(
        settings.SHOPIFY_API_BASE_URL,
        settings.SHOPIFY_CONNECT_TIMEOUT_SECONDS,
        settings.SHOPIFY_READ_TIMEOUT_SECONDS,
    )
