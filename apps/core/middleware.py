"""Request-wide guards: body size limit for the API, unscoped access for Django admin, and the
storefront router that takes app-proxy requests past the browser-only middleware."""

from django.conf import settings
from django.utils.translation import gettext as _

from .tenancy import scopes_disabled


class RequestSizeLimitMiddleware:
    """Refuse oversized API bodies with a 413 envelope before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(("/v1/api/", "/proxy/")):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                from .api.responses import error_response

                return error_response(
                    "payload_too_large",
                    _("The request body is larger than %(limit)s bytes.") % {"limit": settings.API_MAX_BODY_BYTES},
                    status=413,
                )
        return self.get_response(request)


class AdminScopesMiddleware:
    """LoyalNest staff work across merchants in Django admin; access to personal data is
    permission-gated and audit-logged there (apps.core.admin)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/admin/"):
            with scopes_disabled():
                return self.get_response(request)
        return self.get_response(request)


class StorefrontRouterMiddleware:
    """App-proxy requests (`/proxy/`) leave the middleware stack here.

    What follows in MIDDLEWARE serves people in a browser: sessions, CSRF, authentication,
    messages, the locale middleware, framing headers, admin scopes, referral attribution.
    Shopify's app proxy strips cookies from what it forwards, our proxy views authenticate by
    the signed query and resolve their own locale (`ApiView`), and their answers are JSON or
    Liquid rendered inside the shop's page — none of those middlewares changes anything for
    them, yet together they cost about 0.2 ms of CPU per request, a tenth of the storefront
    widget endpoint's budget. So `/proxy/` requests go from here straight to URL resolution
    and the view, through a handler built with `STOREFRONT_MIDDLEWARE` (none today); what came
    before this middleware (security headers, the body size limit) applies to them as to
    every request, and the outer handler still sends the request signals and logs errors.
    """

    prefix = "/proxy/"

    def __init__(self, get_response):
        self.get_response = get_response
        self.storefront = _handler_with(settings.STOREFRONT_MIDDLEWARE)

    def __call__(self, request):
        if request.path_info.startswith(self.prefix):
            response = self.storefront.get_response(request)
            # What CommonMiddleware, skipped here, does for the rest of the site: the body's
            # length rather than chunked encoding (one write and one TCP segment fewer).
            if not response.streaming and not response.has_header("Content-Length"):
                response.headers["Content-Length"] = str(len(response.content))
            return response
        return self.get_response(request)


def _handler_with(middleware: list[str]):
    """A request handler whose chain is `middleware` instead of settings.MIDDLEWARE."""
    from django.core.handlers.base import BaseHandler

    handler = BaseHandler()
    full = settings.MIDDLEWARE
    # Django reads the list from settings; this runs once per process, while the outer
    # handler loads its own chain (its list is already being iterated), never during a request.
    settings.MIDDLEWARE = middleware
    try:
        handler.load_middleware()
    finally:
        settings.MIDDLEWARE = full
    return handler
