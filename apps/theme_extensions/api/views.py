"""Merchant API of the storefront widgets: PUT /v1/api/theme-extensions (seeds section 5)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core import errors
from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer

from ..config import widget_config_clean
from ..services import theme_extension_configure


class ThemeExtensionConfigureApi(MerchantApiView):
    """Configure one widget (placement, A/B variants, texts per locale, colours) and get its
    rendered preview for `locale`. `merchant_id`, when sent, must be the calling shop's own."""

    required_scope = "admin:frontend"

    class InputSerializer(StrictSerializer):
        merchant_id = serializers.CharField(max_length=40, required=False)
        theme_extension_config = serializers.JSONField()
        locale = LocaleField()

        def validate_theme_extension_config(self, value):
            widget_config_clean(value)  # validated again by the service; here for field errors
            return value

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        data = self.validated(self.InputSerializer, request.data)
        if data.get("merchant_id") not in (None, request.merchant.pk):
            # Another shop's id is simply not found (B2): the shop comes from the session token.
            raise errors.NotFound(_("Merchant not found."))
        preview = theme_extension_configure(
            merchant=request.merchant,
            actor=request.staff,
            theme_extension_config=data["theme_extension_config"],
            locale=data.get("locale") or request.locale,
        )
        return self.ok(preview=preview)
