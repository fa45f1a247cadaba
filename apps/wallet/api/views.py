"""POST /v1/api/wallet/export — for the shopper through the app proxy (the customer is the
verified `logged_in_customer_id`) and for merchant staff helping a customer (session token)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers

from apps.core import errors
from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer
from apps.core.models import Customer
from apps.shopify.proxy import ShopperApiView

from ..models import WalletType
from ..services import wallet_pass_export

OUTPUT = inline_serializer(
    "WalletExportOutput", {"status": serializers.CharField(), "pass_url": serializers.URLField()}
)


class WalletExportInputSerializer(StrictSerializer):
    customer_id = serializers.CharField(max_length=64, required=False)
    wallet_type = serializers.ChoiceField(choices=WalletType.choices)
    locale = LocaleField()


class StaffWalletExportInputSerializer(WalletExportInputSerializer):
    customer_id = serializers.CharField(max_length=64)


class WalletExportApi(MerchantApiView):
    """Export a customer's pass for them (staff support): scope `admin:points`."""

    required_scope = "admin:points"

    @extend_schema(request=StaffWalletExportInputSerializer, responses=OUTPUT)
    def post(self, request):
        data = self.validated(StaffWalletExportInputSerializer, request.data)
        customer = Customer.objects.filter(merchant=request.merchant, pk=data["customer_id"]).first()
        if customer is None:
            raise errors.NotFound(_("This customer does not exist."))
        export = wallet_pass_export(
            merchant=request.merchant,
            customer=customer,
            wallet_type=data["wallet_type"],
            locale=data.get("locale") or request.locale,
            actor=request.staff,
        )
        return self.ok(pass_url=export.pass_url)


class ShopperWalletExportApi(ShopperApiView):
    """Export the logged-in shopper's own pass. `customer_id`, if sent, must be the shopper's."""

    required_scope = "customer:frontend"
    rate_limit_group = "wallet"

    @extend_schema(request=WalletExportInputSerializer, responses=OUTPUT)
    def post(self, request):
        data = self.validated(WalletExportInputSerializer, request.data)
        customer = request.customer
        claimed = data.get("customer_id")
        if claimed is not None and claimed not in (customer.pk, customer.shopify_customer_id):
            raise errors.PermissionDenied()
        export = wallet_pass_export(
            merchant=request.merchant,
            customer=customer,
            wallet_type=data["wallet_type"],
            locale=data.get("locale") or request.locale,
        )
        return self.ok(pass_url=export.pass_url)
