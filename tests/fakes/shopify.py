"""A fake Shopify on loopback: the OAuth token endpoint and the Admin GraphQL API.

The app reaches it through settings.SHOPIFY_API_BASE_URL (apps.shopify.http rewrites
`https://{shop}.myshopify.com` to it and names the shop in a header), so the real shopifyapp
client code runs over a real socket.

GraphQL operations are dispatched by operation name to handlers registered with
`FakeShopify.operation(name, cost)`; each feature registers the operations it sends
(see `tests/fakes/shopify_operations.py`). Behaviour a test can turn on:
- `failure_rate` / `fail_next(n, status)`: HTTP 5xx (or 429) answers;
- the cost bucket: `bucket_max`, `restore_rate`, `drain(shop)` → `THROTTLED` answered with 200;
- token errors: an unknown or reused refresh token → `invalid_grant`; a forged id token, or
  one of a shop in `not_installed` (the merchant removed the app) → `invalid_subject_token`.
"""

import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

import jwt

from apps.shopify.http import SHOP_HEADER

from .http import FakeServer, RecordedRequest

OPERATION_NAME = re.compile(r"\b(?:query|mutation)\s+(\w+)")


@dataclass
class FakeShop:
    domain: str
    gid: str
    access_tokens: dict = field(default_factory=dict)  # token -> expires_at
    refresh_tokens: dict = field(default_factory=dict)  # token -> expires_at (one use)
    available: float = 1000.0
    updated_at: float = field(default_factory=time.time)
    data: dict = field(default_factory=dict)  # free-form state of the operations (customers, orders…)


class FakeShopify:
    def __init__(self, *, client_id: str, client_secret: str, seed: int = 0):
        self.client_id = client_id
        self.client_secret = client_secret
        self.shops: dict[str, FakeShop] = {}
        self.operations: dict[str, tuple] = {}
        self.calls: list[tuple[str, str, dict]] = []  # (shop, operation, variables)
        self.failure_rate = 0.0
        self.failure_status = 503
        self._fail_next: list[int] = []
        self.bucket_max = 1000.0
        self.restore_rate = 50.0
        self.access_token_ttl = 3600
        self.refresh_token_ttl = 90 * 24 * 3600
        self.not_installed: set[str] = set()  # shops whose token exchange Shopify refuses
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.server = FakeServer(respond=self._respond)
        self.url = self.server.url

    # --- test controls -------------------------------------------------------------------
    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)

    def shop(self, domain: str) -> FakeShop:
        with self.lock:
            if domain not in self.shops:
                self.shops[domain] = FakeShop(domain=domain, gid=f"gid://shopify/Shop/{len(self.shops) + 1001}")
            return self.shops[domain]

    def operation(self, name: str, cost: float = 10):
        """Register a handler `(fake, shop, variables) -> data` for a GraphQL operation name."""

        def register(handler):
            self.operations[name] = (handler, cost)
            return handler

        return register

    def fail_next(self, count: int = 1, status: int = 503):
        self._fail_next.extend([status] * count)

    def drain(self, domain: str):
        """Empty the shop's cost bucket so the next expensive call is THROTTLED."""
        shop = self.shop(domain)
        shop.available, shop.updated_at = 0.0, time.time()

    def issue_tokens(self, domain: str) -> tuple[str, str]:
        """Hand out a valid access/refresh token pair, as if the shop had installed the app."""
        shop = self.shop(domain)
        access, refresh = f"shpat_{secrets.token_hex(12)}", f"shprt_{secrets.token_hex(12)}"
        shop.access_tokens[access] = time.time() + self.access_token_ttl
        shop.refresh_tokens[refresh] = time.time() + self.refresh_token_ttl
        return access, refresh

    def calls_of(self, operation: str) -> list[tuple[str, dict]]:
        return [(shop, variables) for shop, name, variables in self.calls if name == operation]

    # --- HTTP ----------------------------------------------------------------------------
    def _respond(self, request: RecordedRequest):
        domain = request.headers.get(SHOP_HEADER) or request.headers.get(SHOP_HEADER.title()) or ""
        with self.lock:
            if self._fail_next:
                status = self._fail_next.pop(0)
                return status, {"errors": "Service unavailable"}, {"Retry-After": "0"} if status == 429 else {}
            if self.failure_rate and self.rng.random() < self.failure_rate:
                return self.failure_status, {"errors": "Internal error"}, {}
        if request.path == "/admin/oauth/access_token":
            return self._token(domain, request.json())
        if request.path.endswith("/graphql.json"):
            return self._graphql(domain, request)
        return 404, {"errors": "Not Found"}, {}

    def _token(self, domain: str, body: dict):
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}, {}
        shop = self.shop(domain)
        grant = body.get("grant_type")
        with self.lock:
            if grant == "urn:ietf:params:oauth:grant-type:token-exchange":
                try:
                    claims = jwt.decode(
                        body.get("subject_token", ""), self.client_secret, algorithms=["HS256"], audience=self.client_id
                    )
                except jwt.PyJWTError:
                    return 400, {"error": "invalid_subject_token"}, {}
                if not str(claims.get("dest", "")).endswith(domain) or domain in self.not_installed:
                    return 400, {"error": "invalid_subject_token"}, {}
            elif grant == "refresh_token":
                token = body.get("refresh_token", "")
                expires_at = shop.refresh_tokens.pop(token, None)  # rotating: one use only
                if expires_at is None or expires_at < time.time():
                    return 400, {"error": "invalid_grant", "error_description": "refresh token invalid"}, {}
            else:
                return 400, {"error": "unsupported_grant_type"}, {}
            access, refresh = self.issue_tokens(domain)
        return (
            200,
            {
                "access_token": access,
                "scope": "read_customers,write_customers,read_orders",
                "expires_in": self.access_token_ttl,
                "refresh_token": refresh,
                "refresh_token_expires_in": self.refresh_token_ttl,
            },
            {},
        )

    def _cost(self, shop: FakeShop, requested: float, actual: float | None):
        now = time.time()
        shop.available = min(self.bucket_max, shop.available + self.restore_rate * (now - shop.updated_at))
        shop.updated_at = now
        if actual is not None:
            shop.available -= actual
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.bucket_max,
                "currentlyAvailable": round(shop.available, 1),
                "restoreRate": self.restore_rate,
            },
        }

    def _graphql(self, domain: str, request: RecordedRequest):
        shop = self.shop(domain)
        token = request.headers.get("X-Shopify-Access-Token", "")
        with self.lock:
            expires_at = shop.access_tokens.get(token)
            if expires_at is None or expires_at < time.time():
                return (
                    401,
                    {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
                    {},
                )
            payload = request.json()
            match = OPERATION_NAME.search(payload.get("query", ""))
            name = match.group(1) if match else ""
            if name not in self.operations:
                return 200, {"errors": [{"message": f"Unknown operation {name!r} in the fake Shopify"}]}, {}
            handler, cost = self.operations[name]
            variables = payload.get("variables") or {}
            if shop.available < cost:
                extensions = {"cost": self._cost(shop, cost, None)}
                throttled = {"message": "Throttled", "extensions": {"code": "THROTTLED"}}
                return 200, {"errors": [throttled], "extensions": extensions}, {}
            self.calls.append((domain, name, json.loads(json.dumps(variables))))
            data = handler(self, shop, variables)
            return 200, {"data": data, "extensions": {"cost": self._cost(shop, cost, cost)}}, {}
