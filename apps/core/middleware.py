"""Request-wide guards: body size limit for the API, unscoped access for Django admin."""

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
