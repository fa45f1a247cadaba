"""Merchant API of the loyalty core: customers, the ledger, roles, health."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from ulid import ULID

from apps.core import errors, selectors, services
from apps.core.health import health_report
from apps.core.locales import LOCALES
from apps.core.models import StaffRole, localized
from apps.core.pagination import PageInputSerializer
from apps.core.rbac import ADMIN_SCOPES, principal_scopes, role_scopes_for

from .base import LocaleField, MerchantApiView, PublicApiView, StrictSerializer
from .idempotency import idempotency_key, idempotent
from .permissions import STAFF


def ledger_key(request) -> str:
    """The ledger's idempotency key: the client's `Idempotency-Key`, or a fresh one."""
    key = idempotency_key(request)
    return f"api:{key}" if key else f"api:{ULID()}"


def customer_or_404(request, customer_id):
    """The calling shop's customer, or a 404 (another shop's id is simply not found)."""
    customer = selectors.customer_get(merchant=request.merchant, customer_id=customer_id)
    if customer is None:
        raise errors.NotFound(_("Customer not found."))
    return customer


class CustomerOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    shopify_customer_id = serializers.CharField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    locale = serializers.CharField()
    points_balance = serializers.IntegerField()
    lifetime_points = serializers.IntegerField()
    vip_tier = serializers.SerializerMethodField()
    churn_score = serializers.FloatField(allow_null=True)
    lifecycle_stage = serializers.CharField()
    rfm_segment = serializers.CharField()
    shared_customer_id = serializers.CharField(allow_null=True)
    orders_count = serializers.IntegerField()
    total_spent = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    last_order_at = serializers.DateTimeField(allow_null=True)

    def get_vip_tier(self, customer) -> dict | None:
        tier = customer.vip_tier
        if tier is None:
            return None
        locale = self.context.get("locale", "en")
        return {"id": tier.pk, "name": localized(tier.name, locale)}


class TransactionOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    customer_id = serializers.CharField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    balance_after = serializers.IntegerField()
    order_id = serializers.CharField(allow_null=True)
    reward_id = serializers.CharField(allow_null=True)
    reverses_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class HealthApi(PublicApiView):
    """PostgreSQL, Redis and the Celery broker; 503 when the database is down."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request):
        report = health_report()
        status = 200 if report["checks"]["postgresql"]["ok"] else 503
        return self.ok(status=status, **report)


class MeApi(MerchantApiView):
    """Who is calling: shop, staff role and the scopes it holds."""

    required_scope = STAFF

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        merchant = request.merchant
        return self.ok(
            merchant={
                "id": merchant.pk,
                "shop_domain": merchant.shop_domain,
                "name": merchant.name,
                "primary_locale": merchant.primary_locale,
                "currency": merchant.currency,
            },
            staff={"id": request.staff.pk, "role": request.staff.role},
            scopes=sorted(principal_scopes(request.staff)),
            locale=request.locale,
        )


class CustomerListApi(MerchantApiView):
    required_scope = "admin:points"

    class InputSerializer(PageInputSerializer, StrictSerializer):
        q = serializers.CharField(required=False, max_length=255, allow_blank=True)
        locale = LocaleField()

    @extend_schema(parameters=[InputSerializer], responses=CustomerOutputSerializer(many=True))
    def get(self, request):
        data = self.validated(self.InputSerializer, request.query_params.dict())
        rows, next_cursor = selectors.customer_list(
            merchant=request.merchant, search=data.get("q", ""), cursor=data.get("cursor"), limit=data["limit"]
        )
        output = CustomerOutputSerializer(rows, many=True, context={"locale": request.locale})
        return self.ok(customers=output.data, next_cursor=next_cursor)


class CustomerDetailApi(MerchantApiView):
    required_scope = "admin:points"

    @extend_schema(responses=CustomerOutputSerializer)
    def get(self, request, customer_id):
        customer = customer_or_404(request, customer_id)
        output = CustomerOutputSerializer(customer, context={"locale": request.locale})
        return self.ok(customer=output.data)


class CustomerTransactionListApi(MerchantApiView):
    required_scope = "admin:points"

    class InputSerializer(PageInputSerializer, StrictSerializer):
        locale = LocaleField()

    @extend_schema(parameters=[InputSerializer], responses=TransactionOutputSerializer(many=True))
    def get(self, request, customer_id):
        data = self.validated(self.InputSerializer, request.query_params.dict())
        customer = customer_or_404(request, customer_id)
        rows, next_cursor = selectors.points_transaction_list(
            merchant=request.merchant, customer=customer, cursor=data.get("cursor"), limit=data["limit"]
        )
        return self.ok(
            transactions=TransactionOutputSerializer(rows, many=True).data,
            points_balance=customer.points_balance,
            next_cursor=next_cursor,
        )


class PointsAdjustApi(MerchantApiView):
    """Add or remove points by hand, with a reason. Send an `Idempotency-Key`."""

    required_scope = "admin:points"

    class InputSerializer(StrictSerializer):
        customer_id = serializers.CharField(max_length=40)
        points = serializers.IntegerField(min_value=-10_000_000, max_value=10_000_000)
        reason = serializers.CharField(max_length=255)
        locale = LocaleField()

        def validate_points(self, value):
            if value == 0:
                raise serializers.ValidationError(_("Enter a number other than zero."))
            return value

    @extend_schema(request=InputSerializer, responses=TransactionOutputSerializer)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        customer = customer_or_404(request, data["customer_id"])
        result = services.points_adjust(
            merchant=request.merchant,
            customer=customer,
            points=data["points"],
            reason=data["reason"],
            actor=request.staff,
            idempotency_key=ledger_key(request),
        )
        return self.ok(
            status=201 if result.created else 200,
            transaction=TransactionOutputSerializer(result.transaction).data,
            points_balance=result.balance,
        )


class PointsRedeemApi(MerchantApiView):
    """Redeem a reward (or a number of points) for a customer, e.g. at the support desk."""

    required_scope = "admin:points"

    class InputSerializer(StrictSerializer):
        customer_id = serializers.CharField(max_length=40)
        reward_id = serializers.CharField(max_length=40, required=False)
        points = serializers.IntegerField(min_value=1, max_value=10_000_000, required=False)
        locale = LocaleField()

        def validate(self, attrs):
            if ("reward_id" in attrs) == ("points" in attrs):
                raise serializers.ValidationError({"reward_id": [_("Send either a reward or a number of points.")]})
            return attrs

    @extend_schema(request=InputSerializer, responses=TransactionOutputSerializer)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        customer = customer_or_404(request, data["customer_id"])
        reward = None
        if "reward_id" in data:
            reward = selectors.reward_get(merchant=request.merchant, reward_id=data["reward_id"])
            if reward is None:
                raise errors.NotFound(_("Reward not found."))
        result = services.points_redeem(
            merchant=request.merchant,
            customer=customer,
            points=data.get("points", 0),
            reward=reward,
            actor=request.staff,
            idempotency_key=ledger_key(request),
        )
        return self.ok(
            status=201 if result.created else 200,
            transaction=TransactionOutputSerializer(result.transaction).data,
            points_balance=result.balance,
        )


class PointsReverseApi(MerchantApiView):
    """Reverse a ledger entry (wholly, or `points` of it). Entries are never edited."""

    required_scope = "admin:points"

    class InputSerializer(StrictSerializer):
        transaction_id = serializers.CharField(max_length=40)
        points = serializers.IntegerField(min_value=1, max_value=10_000_000, required=False)
        reason = serializers.CharField(max_length=255)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=TransactionOutputSerializer)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        original = selectors.points_transaction_get(merchant=request.merchant, transaction_id=data["transaction_id"])
        if original is None:
            raise errors.NotFound(_("Points transaction not found."))
        result = services.points_reverse(
            merchant=request.merchant,
            original=original,
            points=data.get("points"),
            reason=data["reason"],
            actor=request.staff,
            idempotency_key=ledger_key(request),
        )
        return self.ok(
            status=201 if result.created else 200,
            transaction=TransactionOutputSerializer(result.transaction).data,
            points_balance=result.balance,
        )


class RoleListApi(MerchantApiView):
    """The roles → scopes map and the staff; the owner can edit both."""

    required_scope = STAFF

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        staff = selectors.staff_member_list(merchant=request.merchant)
        return self.ok(
            roles=role_scopes_for(request.merchant.pk),
            scopes=list(ADMIN_SCOPES),
            staff=[{"id": s.pk, "name": s.name, "role": s.role, "is_active": s.is_active} for s in staff],
        )

    class InputSerializer(StrictSerializer):
        roles = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField(max_length=32), max_length=len(ADMIN_SCOPES))
        )
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request):
        data = self.validated(self.InputSerializer, request.data)
        roles = services.role_scopes_update(merchant=request.merchant, actor=request.staff, role_scopes=data["roles"])
        return self.ok(roles=roles)


class StaffRoleApi(MerchantApiView):
    required_scope = STAFF

    class InputSerializer(StrictSerializer):
        role = serializers.ChoiceField(choices=StaffRole.choices)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, staff_id):
        data = self.validated(self.InputSerializer, request.data)
        staff = services.staff_member_set_role(
            merchant=request.merchant, actor=request.staff, staff_id=staff_id, role=data["role"]
        )
        return self.ok(staff={"id": staff.pk, "role": staff.role})


class LocaleListApi(PublicApiView):
    """The 22 supported locales and which are right-to-left."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        from apps.core.locales import is_rtl

        return self.ok(locales=[{"code": code, "rtl": is_rtl(code)} for code in LOCALES])
