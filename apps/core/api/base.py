"""Base classes of every LoyalNest API view: locale, tenant scope, strict input, envelope."""

from contextlib import ExitStack

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.views import APIView

from apps.core import errors
from apps.core.locales import DEFAULT_LOCALE, django_language, normalize_locale
from apps.core.tenancy import merchant_scope

from .responses import ok


def _accept_language_locale(request) -> str | None:
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    for part in header.split(","):
        locale = normalize_locale(part.split(";")[0].strip())
        if locale:
            return locale
    return None


class LocaleField(serializers.CharField):
    """A locale in the specification's spelling (`zh-CN`); aliases such as `de-DE` accepted."""

    default_error_messages = {"invalid_locale": _("This locale is not supported.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 16)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        locale = normalize_locale(super().to_internal_value(data))
        if locale is None:
            self.fail("invalid_locale")
        return locale


class StrictSerializer(serializers.Serializer):
    """Input serializer that refuses fields it does not know (except the universal `locale`)."""

    default_error_messages = {"unknown_field": _("Unknown field.")}
    allowed_extra_fields = frozenset({"locale"})

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": [_("Send a JSON object.")]}, code="invalid")
        unknown = set(data) - set(self.fields) - self.allowed_extra_fields
        value = super().to_internal_value(data)
        if unknown:
            raise serializers.ValidationError(
                {name: [self.error_messages["unknown_field"]] for name in sorted(unknown)}
            )
        return value


class ApiView(APIView):
    """Resolve the locale first (so even a 401 speaks it), authenticate, enter the merchant's
    scope for the rest of the request, and answer in the envelope.

    Subclasses set `required_scope` to one of the RBAC scopes, or to `PUBLIC`.
    """

    required_scope = None

    def initial(self, request, *args, **kwargs):
        self._exit_stack = ExitStack()
        request.locale = self.resolve_locale(request)
        translation.activate(django_language(request.locale))
        if getattr(request, "_body_unparseable", False):
            # DRF forgets a parse error after the first read; report it ourselves.
            raise errors.MalformedRequest()
        super().initial(request, *args, **kwargs)
        principal = request.user
        request.merchant = getattr(principal, "merchant", None)
        request.staff = principal if hasattr(principal, "role") else None
        request.customer = getattr(principal, "customer", None)
        if request.merchant is not None:
            self._exit_stack.enter_context(merchant_scope(request.merchant))

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        stack = getattr(self, "_exit_stack", None)
        if stack is not None:
            stack.close()
        translation.deactivate()
        return response

    def resolve_locale(self, request) -> str:
        """Explicit `locale` (body or query) > Accept-Language > merchant default > English."""
        explicit = request.query_params.get("locale")
        if explicit is None and request.method in ("POST", "PUT", "PATCH"):
            try:
                data = request.data
            except ParseError:
                request._body_unparseable = True
                data = None
            if isinstance(data, dict) and isinstance(data.get("locale"), str):
                explicit = data["locale"]
        if explicit is not None:
            locale = normalize_locale(explicit)
            if locale is None:
                translation.activate(django_language(_accept_language_locale(request) or DEFAULT_LOCALE))
                raise errors.InvalidLocale(details={"locale": [str(errors.InvalidLocale.default_message)]})
            return locale
        return _accept_language_locale(request) or DEFAULT_LOCALE

    def validated(self, serializer_class, data, **context):
        serializer = serializer_class(data=data, context={"request": self.request, **context})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def ok(self, status=200, headers=None, **fields):
        return ok(status=status, headers=headers, **fields)


class MerchantApiView(ApiView):
    """A view for merchant staff inside the embedded admin (session-token authenticated)."""


class PublicApiView(ApiView):
    authentication_classes = []
    required_scope = "public"
