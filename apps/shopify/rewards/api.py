"""Merchant API of reward redemptions, mounted under `v1/api/` beside the core API.

`POST /v1/api/points/redeem` is served here rather than by the core kernel: a reward is
delivered as a Shopify discount code, and the core imports no Shopify code. A plain number of
points (no reward) is still the core's pure ledger debit.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core import errors, selectors
from apps.core.api.base import MerchantApiView
from apps.core.api.idempotency import idempotent
from apps.core.api.views import PointsRedeemApi, customer_or_404, ledger_key
from apps.core.models import Customer

from ..models import RedemptionStatus
from .selectors import reward_redemption_get, reward_redemption_list
from .services import reward_redeem, reward_redemption_issue_in_request


class RedemptionOutputSerializer(serializers.Serializer):
    """A redemption as its shopper (and staff) see it: the code only once Shopify holds it."""

    id = serializers.CharField()
    reward_id = serializers.CharField()
    status = serializers.CharField()
    code = serializers.SerializerMethodField()
    points = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField()
    issued_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_code(self, redemption) -> str | None:
        return redemption.code if redemption.status == RedemptionStatus.ISSUED else None

    def get_points(self, redemption) -> int:
        return abs(redemption.transaction.points)


class RedemptionAnswerSerializer(serializers.Serializer):
    """The answer to a reward redemption (201 issued, 202 pending, 200 failed or a replay)."""

    redemption = RedemptionOutputSerializer()
    points_balance = serializers.IntegerField()


class RedemptionListOutputSerializer(serializers.Serializer):
    redemptions = RedemptionOutputSerializer(many=True)


REDEMPTION_RESPONSES = {
    200: RedemptionAnswerSerializer,
    201: RedemptionAnswerSerializer,
    202: RedemptionAnswerSerializer,
}


def redemption_status_code(redemption, *, replayed: bool) -> int:
    """201 issued now, 200 a replay or a failure already settled, 202 still being issued."""
    if redemption.status == RedemptionStatus.PENDING:
        return 202
    if redemption.status == RedemptionStatus.ISSUED and not replayed:
        return 201
    return 200


def redemption_answer(view, request, recorded, *, balance_of) -> object:
    """Turn the recorded intent (a redemption id) into the answer: try issuing once in this
    request, outside any transaction, then describe the redemption as it now stands."""
    if not 200 <= recorded.status_code < 300:
        return recorded
    replayed = recorded.headers.get("Idempotent-Replayed") == "true"
    redemption = reward_redemption_get(merchant=request.merchant, redemption_id=recorded.data["redemption_id"])
    if redemption is None:
        raise errors.NotFound(_("Redemption not found."))
    if not replayed:
        redemption = reward_redemption_issue_in_request(merchant=request.merchant, redemption=redemption)
        redemption = reward_redemption_get(merchant=request.merchant, redemption_id=redemption.pk)
    customer = Customer.objects.get(merchant=request.merchant, pk=redemption.customer_id)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return view.ok(
        status=redemption_status_code(redemption, replayed=replayed),
        headers=headers,
        redemption=RedemptionOutputSerializer(redemption).data,
        points_balance=balance_of(customer),
    )


class MerchantPointsRedeemApi(PointsRedeemApi):
    """Redeem a reward for a customer (issues its Shopify discount code), or debit a number of
    points. Send an `Idempotency-Key`: the same key answers with the same redemption."""

    # 200/201 are a redemption or, for a number of points, the core's `{transaction, points_balance}`.
    @extend_schema(
        request=PointsRedeemApi.InputSerializer,
        responses={**REDEMPTION_RESPONSES, 200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        if "reward_id" not in data:
            return super().post(request)
        recorded = self._record(request)
        return redemption_answer(self, request, recorded, balance_of=lambda customer: customer.points_balance)

    @idempotent
    def _record(self, request):
        data = self.validated(self.InputSerializer, request.data)
        customer = customer_or_404(request, data["customer_id"])
        reward = selectors.reward_get(merchant=request.merchant, reward_id=data["reward_id"])
        if reward is None:
            raise errors.NotFound(_("Reward not found."))
        redemption = reward_redeem(
            merchant=request.merchant,
            customer=customer,
            reward=reward,
            actor=request.staff,
            idempotency_key=ledger_key(request),
            locale=data.get("locale") or customer.locale,
            source="merchant_api",
            issue_in_request=True,
        )
        return self.ok(status=201, redemption_id=redemption.pk)


class CustomerRedemptionListApi(MerchantApiView):
    """A customer's reward redemptions and their discount codes, newest first."""

    required_scope = "admin:points"

    @extend_schema(responses=RedemptionListOutputSerializer)
    def get(self, request, customer_id):
        customer = customer_or_404(request, customer_id)
        redemptions = reward_redemption_list(merchant=request.merchant, customer=customer)
        return self.ok(redemptions=RedemptionOutputSerializer(redemptions, many=True).data)
