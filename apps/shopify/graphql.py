"""The Admin GraphQL client: pinned API version, timeouts, a cost budget shared per shop,
`THROTTLED` (answered with HTTP 200) and 429/5xx retried with jittered backoff, `userErrors`
raised as typed errors.

Requests go through shopifyapp's `admin_graphql_request` (its own retries are turned off:
they sleep a fixed `Retry-After` and know nothing of the query-cost bucket).
"""

import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from shopify_app import admin_graphql_request

from apps.core.errors import ApplicationError
from apps.core.redis import get_redis

from .http import shopify_http_client

logger = logging.getLogger(__name__)

MAX_THROTTLE_WAIT_SECONDS = 20.0


class ShopifyError(ApplicationError):
    """Shopify did not do what we asked. `retryable` says whether trying again can help."""

    code = "shopify_error"
    status = 502
    default_message = _("Shopify could not complete the request. Try again in a moment.")

    def __init__(self, message=None, *, retryable: bool, detail: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.retryable = retryable
        self.detail = detail[:500]


class ShopifyAuthError(ShopifyError):
    code = "shopify_reauth_required"
    status = 401
    default_message = _("LoyalNest needs to be reconnected to your Shopify store. Reload the app.")

    def __init__(self, message=None, **kwargs):
        kwargs.setdefault("retryable", False)
        super().__init__(message, **kwargs)


class ShopifyUserError(ShopifyError):
    """Shopify refused the input of a mutation (`userErrors`)."""

    code = "shopify_user_error"
    status = 422
    default_message = _("Shopify refused the change: %(reason)s")

    def __init__(self, user_errors: list[dict]):
        reason = "; ".join(str(e.get("message", "")) for e in user_errors)[:300]
        super().__init__(self.default_message % {"reason": reason}, retryable=False, detail=reason)
        self.user_errors = user_errors

    @property
    def codes(self) -> set[str]:
        return {str(e.get("code") or "") for e in self.user_errors}


@dataclass
class ThrottleStatus:
    maximum: float
    available: float
    restore_rate: float
    at: float

    def available_now(self, now: float) -> float:
        return min(self.maximum, self.available + self.restore_rate * max(now - self.at, 0))


class CostBudget:
    """The shop's query-cost bucket as Shopify last reported it, shared by every worker
    through Redis. Redis down → no shared view; Shopify's THROTTLED answer still protects us."""

    def __init__(self, shop_domain: str):
        self.key = f"shopify:cost:{shop_domain}"

    def _load(self) -> ThrottleStatus | None:
        try:
            raw = get_redis().hgetall(self.key)
        except redis.RedisError:
            return None
        if not raw:
            return None
        return ThrottleStatus(
            float(raw["maximum"]), float(raw["available"]), float(raw["restore_rate"]), float(raw["at"])
        )

    def wait_seconds(self, cost: float) -> float:
        status = self._load()
        if status is None or status.restore_rate <= 0:
            return 0.0
        missing = cost - status.available_now(time.time())
        return min(max(missing / status.restore_rate, 0.0), MAX_THROTTLE_WAIT_SECONDS)

    def record(self, throttle_status: dict) -> None:
        try:
            get_redis().hset(
                self.key,
                mapping={
                    "maximum": throttle_status["maximumAvailable"],
                    "available": throttle_status["currentlyAvailable"],
                    "restore_rate": throttle_status["restoreRate"],
                    "at": time.time(),
                },
            )
            get_redis().expire(self.key, 3600)
        except (redis.RedisError, KeyError, TypeError) as exc:
            logger.debug("cost budget not recorded: %s", type(exc).__name__)


def _backoff(attempt: int, retry_after: str | None = None) -> float:
    """Exponential backoff with full jitter; Shopify's Retry-After wins when it is longer."""
    delay = random.uniform(0, min(8.0, 0.25 * 2**attempt))  # noqa: S311  (jitter, not security)
    if retry_after:
        with contextlib.suppress(ValueError):
            delay = max(delay, float(retry_after))
    return delay


def _dig(data: dict, path: str):
    for part in path.split("."):
        data = (data or {}).get(part)
    return data


def shop_name(shop_domain: str) -> str:
    return shop_domain.removesuffix(".myshopify.com")


def graphql(
    *,
    shop_domain: str,
    access_token: str,
    query: str,
    variables: dict | None = None,
    user_errors_at: str | None = None,
    estimated_cost: float = 10,
    sleep=time.sleep,
    max_attempts: int | None = None,
) -> dict:
    """Run one Admin API operation and return its `data`. Raises ShopifyError and subclasses.

    `max_attempts` lowers the retry budget for callers inside a request (one attempt, then the
    work is left to a task) instead of SHOPIFY_GRAPHQL_MAX_ATTEMPTS."""
    budget = CostBudget(shop_domain)
    attempts = max_attempts or settings.SHOPIFY_GRAPHQL_MAX_ATTEMPTS
    last_error: ShopifyError | None = None
    for attempt in range(attempts):
        wait = budget.wait_seconds(estimated_cost)
        if wait:
            sleep(wait)
        result = admin_graphql_request(
            query,
            shop=shop_name(shop_domain),
            access_token=access_token,
            api_version=settings.SHOPIFY_API_VERSION,
            variables=variables,
            max_retries=0,
            http_client=shopify_http_client(),
        )
        status = result.response.status
        try:
            body = json.loads(result.response.body or "{}")
        except ValueError:
            body = {}
        throttle = _dig(body, "extensions.cost.throttleStatus")
        if throttle:
            budget.record(throttle)

        if result.ok:
            data = result.data or {}
            if user_errors_at:
                user_errors = _dig(data, user_errors_at) or []
                if user_errors:
                    raise ShopifyUserError(user_errors)
            return data

        errors = body.get("errors") if isinstance(body, dict) else None
        if status == 200 and errors:
            if any(_dig(e, "extensions.code") == "THROTTLED" for e in errors if isinstance(e, dict)):
                requested = _dig(body, "extensions.cost.requestedQueryCost") or estimated_cost
                estimated_cost = max(float(requested), estimated_cost)
                last_error = ShopifyError(retryable=True, detail="THROTTLED")
                sleep(budget.wait_seconds(estimated_cost) or _backoff(attempt))
                continue
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            raise ShopifyError(retryable=False, detail=messages)
        if status == 401:
            raise ShopifyAuthError(detail="401 from the Admin API")
        if status == 0 or status == 429 or status >= 500:
            retry_after = {k.lower(): v for k, v in result.response.headers.items()}.get("retry-after")
            last_error = ShopifyError(retryable=True, detail=f"HTTP {status or 'network error'}")
            if attempt + 1 < attempts:
                sleep(_backoff(attempt, retry_after))
            continue
        raise ShopifyError(retryable=False, detail=f"HTTP {status}")
    logger.warning("Shopify GraphQL gave up after %s attempts (%s)", attempts, last_error.detail if last_error else "")
    raise last_error or ShopifyError(retryable=True)
