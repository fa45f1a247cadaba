"""The Shopify app proxy: storefront requests, verified, rate-limited (RELIABILITY A7, D3, E5).

Shopify forwards `https://{shop}/apps/loyalnest/<path>` to `<app>/proxy/<path>` and adds the
query parameters `shop`, `logged_in_customer_id` (blank for anonymous visitors),
`path_prefix`, `timestamp` and `signature`: the hex HMAC-SHA256, keyed with the app's client
secret, of every other query parameter as sorted `key=value` pairs joined with no separator
(repeated values joined by `,`). It is checked in constant time, timestamps more than 90 s
off are refused, and the previous secret is accepted during a rotation: Shopify's rules, as
shopifyapp's `verify_app_proxy_req` implements them. `proxy_signature_verify` applies them to the
raw query string without the library's per-request overhead; the library remains the reference
its tests compare it with (tests/shopify/test_proxy_signature.py).

Identity comes only from that signed query: the shop from `shop`, the shopper from
`logged_in_customer_id`. Nothing in the body, the headers or other parameters can name a shop
or a customer.

Feature apps serve their shopper endpoints by subclassing `ShopperApiView`:

    class WalletExportApi(ShopperApiView):
        required_scope = "customer:frontend"   # a logged-in shopper; STOREFRONT allows anonymous
        rate_limit_group = "wallet"            # optional: a rate of its own in PROXY_RATE_LIMITS

        def post(self, request):
            ...  # request.merchant, request.customer (None when anonymous), request.locale

and mount their URLs under `proxy/v1/api/` in `loyalnest/urls.py`.
"""

import logging
import re

import redis
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import Throttled

from apps.core import errors
from apps.core.api.base import ApiView
from apps.core.api.permissions import HasScope
from apps.core.api.renderers import StorefrontJSONRenderer
from apps.core.rbac import ShopperPrincipal
from apps.core.services import customer_get_or_create_by_shopify_id
from apps.core.tenancy import merchant_scope

from .auth import SHOP_HOST
from .proxy_signature import proxy_signature_verify
from .ratelimit import Counter, PendingHit, Rate, client_fingerprint, rate_limit_send
from .shops import shops

logger = logging.getLogger(__name__)

# Any verified storefront request, anonymous or logged in (e.g. looking up a referral code).
STOREFRONT = "storefront"
SHOPIFY_CUSTOMER_ID = re.compile(r"^[0-9]{1,32}$")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ProxySignatureInvalid(errors.ApplicationError):
    """Missing, forged or stale app-proxy signature (not an App Bridge session: no retry header)."""

    code = "authentication_failed"
    status = 401
    default_message = _("This request could not be verified. Reload the page and try again.")


class ShopperLoginRequired(errors.ApplicationError):
    code = "login_required"
    status = 401
    default_message = _("Log in to see your points and rewards.")


def _proxy_secrets() -> tuple[str, str | None]:
    return settings.SHOPIFY_API_SECRET, settings.SHOPIFY_API_SECRET_PREVIOUS or None


def verify_proxy_request(request) -> tuple[str, str | None]:
    """Verify the signed query; return (shop domain, Shopify customer id or None)."""
    secret, previous = _proxy_secrets()
    if not secret:
        # An empty key would let anyone sign: refuse rather than trust.
        logger.error("app proxy request refused: SHOPIFY_API_SECRET is not configured")
        raise ProxySignatureInvalid()
    # The query string as the server passed it: the one `request.query_params` reads below.
    result = proxy_signature_verify(request.META.get("QUERY_STRING", ""), secret=secret, previous_secret=previous)
    if not result.ok:
        logger.info("app proxy request refused: %s", result.code)
        raise ProxySignatureInvalid()
    shop = request.GET.get("shop", "").strip().lower()
    if not SHOP_HOST.match(shop):
        logger.info("app proxy request refused: signed shop is not a myshopify.com domain")
        raise ProxySignatureInvalid()
    customer_id = (result.logged_in_customer_id or "").strip() or None
    if customer_id is not None and not SHOPIFY_CUSTOMER_ID.match(customer_id):
        logger.info("app proxy request refused: logged_in_customer_id is not a Shopify id")
        raise ProxySignatureInvalid()
    return shop, customer_id


class AppProxyAuthentication(BaseAuthentication):
    """Authenticate a storefront request by its app-proxy signature.

    Returns `(ShopperPrincipal(merchant, customer), None)`; `customer` is None for anonymous
    visitors. A logged-in shopper we have not heard of yet gets a bare Customer row.
    `ShopperApiView` runs the two steps itself, with its rate limit's round trip to Redis in
    between (`ShopperApiView.perform_authentication`).
    """

    def authenticate(self, request):
        merchant, shopify_customer_id = self.identify(request)
        return ShopperPrincipal(merchant=merchant, customer=self.shopper(request, merchant, shopify_customer_id)), None

    def identify(self, request) -> tuple:
        """The verified shop's installed merchant and the Shopify customer id (None: anonymous)."""
        shop, shopify_customer_id = verify_proxy_request(request)
        merchant = shops.merchant(shop)
        if merchant is None or not merchant.is_installed:
            raise errors.NotFound()
        return merchant, shopify_customer_id

    def shopper(self, request, merchant, shopify_customer_id: str | None):
        """The logged-in shopper's row (made when new), read with the view's lookups; None when anonymous."""
        if shopify_customer_id is None:
            return None
        view = (request.parser_context or {}).get("view")
        with merchant_scope(merchant):
            also = view.shopper_lookups(merchant) if isinstance(view, ShopperApiView) else None
            return customer_get_or_create_by_shopify_id(
                merchant=merchant, shopify_customer_id=shopify_customer_id, also=also
            )

    def authenticate_header(self, request):
        return 'Signature realm="shopify-app-proxy"'


class ShopperScope(HasScope):
    """`STOREFRONT`: any verified storefront request. Any other scope needs a logged-in shopper
    holding it (`customer:frontend`); anonymous visitors are asked to log in."""

    def has_permission(self, request, view):
        principal = request.user
        if not isinstance(principal, ShopperPrincipal):
            raise ProxySignatureInvalid()
        if getattr(view, "required_scope", None) == STOREFRONT:
            return True
        if principal.customer is None:
            raise ShopperLoginRequired()
        return super().has_permission(request, view)


def _client_address(request) -> str:
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    # Shopify's proxy puts the shopper's address first.
    return forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR", "") or "unknown"


class ShopperApiView(ApiView):
    """Base of every storefront endpoint served under `/proxy/`.

    - Authentication: the app-proxy signature (`AppProxyAuthentication`); `request.merchant`,
      `request.customer` (None for anonymous visitors) and `request.locale` (the widget's
      `locale` query parameter, else Accept-Language) are set, and the merchant's scope is
      entered, before the handler runs.
    - Permission: `required_scope` is `"customer:frontend"` (the default: a logged-in shopper;
      anonymous visitors get 401 `login_required`) or `STOREFRONT` (anonymous allowed).
    - Rate limits (D3), counted once the signature and the shop are verified (the answer is
      read after the shopper lookup, see `perform_authentication`): per shop across all endpoints
      (`PROXY_RATE_LIMIT_SHOP`) and per shopper, or per IP address for anonymous visitors,
      within `rate_limit_group` (`PROXY_RATE_LIMITS[group]`). Over a limit: 429 with
      `Retry-After`. With Redis down, safe methods are served (fail open) and others are
      refused with 503 before anything is written (fail closed); set `rate_limit_fail_open`
      to decide otherwise for a view.
    - `@idempotent` handlers store answers per shopper (`idempotency_namespace`), so two
      shoppers sending the same `Idempotency-Key` never see each other's answer.
    """

    authentication_classes = [AppProxyAuthentication]
    permission_classes = [ShopperScope]
    renderer_classes = [StorefrontJSONRenderer]
    required_scope = "customer:frontend"
    rate_limit_group = "storefront"
    rate_limit_fail_open: bool | None = None  # None: open for GET/HEAD/OPTIONS, closed otherwise

    def perform_content_negotiation(self, request, force=False):
        # One renderer, JSON, whatever the client accepts (DRF's IgnoreClientContentNegotiation):
        # parsing Accept on every widget request bought nothing.
        renderer = self.renderer_classes[0]()
        return renderer, renderer.media_type

    def perform_authentication(self, request):
        """`AppProxyAuthentication`, with the rate limits counted meanwhile.

        The count is sent to Redis once the signature and the shop are verified, and read
        after the shopper's row came back from PostgreSQL: a request waits for one answer
        rather than two in a row (the storefront's hottest path: ~0.1 ms of CPU a request).
        A request refused for its signature or shop is not counted; one whose shopper
        lookup fails is.
        """
        authenticator = self.get_authenticators()[0]
        merchant, shopify_customer_id = authenticator.identify(request)
        pending = self.rate_limit_send(request, merchant, shopify_customer_id)
        try:
            customer = authenticator.shopper(request, merchant, shopify_customer_id)
        except BaseException:
            if pending is not None:
                pending.discard()
            raise
        # What DRF's Request records after authenticating (so `request.auth` does not authenticate again).
        request._authenticator = authenticator
        request.user, request.auth = ShopperPrincipal(merchant=merchant, customer=customer), None
        self.rate_limit_wait(request, pending)

    def shopper_lookups(self, merchant) -> dict[str, tuple[str, dict]] | None:
        """SQL expressions to read with the logged-in shopper's row in the same statement
        (`customer_get_or_create_by_shopify_id(also=...)`); values in `request.customer.looked_up`."""
        return None

    def rate_limit_counters(self, request, shopify_customer_id: str | None) -> list[Counter]:
        limits = settings.PROXY_RATE_LIMITS
        group = self.rate_limit_group
        rate = Rate.parse(limits.get(group, limits["storefront"]))
        # A logged-in shopper by the Shopify id the signature vouches for (known before the row is read).
        who = f"s{shopify_customer_id}" if shopify_customer_id else client_fingerprint(_client_address(request))
        return [
            Counter(bucket="shop", who="all", rate=Rate.parse(settings.PROXY_RATE_LIMIT_SHOP)),
            Counter(bucket=group, who=who, rate=rate),
        ]

    def rate_limit_send(self, request, merchant, shopify_customer_id: str | None) -> PendingHit | None:
        """Send this request's count (`rate_limit_wait` reads it); None when Redis is unavailable
        and the request may be served anyway."""
        counters = self.rate_limit_counters(request, shopify_customer_id)
        try:
            return rate_limit_send(merchant_id=merchant.pk, counters=counters)
        except redis.RedisError as exc:
            self.rate_limit_unavailable(request, exc)
            return None

    def rate_limit_wait(self, request, pending: PendingHit | None) -> None:
        """429 when a counter is over its rate."""
        if pending is None:
            return
        try:
            wait = pending.wait()
        except redis.RedisError as exc:
            self.rate_limit_unavailable(request, exc)
            return
        if wait is not None:
            raise Throttled(wait=wait)

    def rate_limit_unavailable(self, request, exc: redis.RedisError) -> None:
        """Redis down: serve reads (fail open), refuse the rest with 503 before anything is written."""
        fail_open = self.rate_limit_fail_open
        if fail_open is None:
            fail_open = request.method in SAFE_METHODS
        logger.warning(
            "rate limit unavailable (%s), %s %s",
            type(exc).__name__,
            request.method,
            "served" if fail_open else "refused",
        )
        if not fail_open:
            raise errors.ServiceUnavailable() from exc

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Answers are one shopper's: never stored by Shopify's proxy, a CDN or the browser cache.
        response["Cache-Control"] = "private, no-store"
        return response

    def idempotency_namespace(self, request) -> str:
        customer = getattr(request, "customer", None)
        return f"shopper:{customer.pk}" if customer is not None else "shopper:anonymous"
