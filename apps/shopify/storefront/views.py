"""Storefront endpoints of the loyalty core: points, rewards, redemption, referral links."""

import hashlib

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from ulid import ULID

from apps.core import errors, selectors, services
from apps.core.api.base import LocaleField, StrictSerializer
from apps.core.api.idempotency import idempotency_key, idempotent

from ..proxy import STOREFRONT, ShopperApiView
from ..rewards import reward_redeem, reward_redemption_list
from ..rewards.api import (
    REDEMPTION_RESPONSES,
    RedemptionListOutputSerializer,
    RedemptionOutputSerializer,
    redemption_answer,
)
from . import selectors as storefront_selectors

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, description="Replays the stored answer."
)


class ShopperTransactionOutputSerializer(serializers.Serializer):
    """A ledger entry as the shopper sees it (no staff reason, no internal references)."""

    id = serializers.CharField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    balance_after = serializers.IntegerField()
    reward_id = serializers.CharField(allow_null=True, required=False)
    created_at = serializers.DateTimeField()


def shopper_ledger_key(request) -> str:
    """The ledger's idempotency key for a shopper's change: per shopper, never shared."""
    key = idempotency_key(request)
    if key is None:
        return f"proxy:{request.customer.pk}:{ULID()}"
    return f"proxy:{request.customer.pk}:{hashlib.sha256(key.encode()).hexdigest()}"


def referral_url(merchant, code: str) -> str:
    # The shop's own address: Shopify redirects it to the primary domain, keeping the query.
    return f"https://{merchant.shop_domain}/?ref={code}"


class ShopperPointsApi(ShopperApiView):
    """The shopper's balance, VIP tier, next tier and latest ledger entries."""

    required_scope = "customer:frontend"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        points = storefront_selectors.shopper_points_get(
            merchant=request.merchant, customer=request.customer, locale=request.locale
        )
        transactions = ShopperTransactionOutputSerializer(points.pop("transactions"), many=True).data
        return self.ok(**points, transactions=transactions)


class ShopperRewardListApi(ShopperApiView):
    """The shop's active rewards; for a logged-in shopper, whether each is affordable."""

    required_scope = STOREFRONT

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        rewards = storefront_selectors.shopper_reward_list(
            merchant=request.merchant, customer=request.customer, locale=request.locale
        )
        return self.ok(rewards=rewards)


class ShopperPointsRedeemApi(ShopperApiView):
    """Redeem a reward with the shopper's points and get its discount code. Send an
    `Idempotency-Key`: the same key answers with the same redemption (one debit).

    201 with the code when Shopify created it within the request; 202 `pending` when Shopify
    was slow or unavailable (a task finishes it: GET redemptions shows the code); 200 `failed`
    when Shopify refused it (the points are back).
    """

    required_scope = "customer:frontend"
    rate_limit_group = "redeem"

    class InputSerializer(StrictSerializer):
        reward_id = serializers.CharField(max_length=40)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, parameters=[IDEMPOTENCY_HEADER], responses=REDEMPTION_RESPONSES)
    def post(self, request):
        recorded = self._record(request)
        return redemption_answer(self, request, recorded, balance_of=lambda customer: customer.points_balance)

    @idempotent
    def _record(self, request):
        """Debit and write the pending redemption (stored per Idempotency-Key: its id)."""
        data = self.validated(self.InputSerializer, request.data)
        reward = selectors.reward_get(merchant=request.merchant, reward_id=data["reward_id"])
        if reward is None:
            raise errors.NotFound(_("Reward not found."))
        redemption = reward_redeem(
            merchant=request.merchant,
            customer=request.customer,
            reward=reward,
            idempotency_key=shopper_ledger_key(request),
            locale=request.locale,
            source="storefront",
            issue_in_request=True,
        )
        return self.ok(status=201, redemption_id=redemption.pk)


class ShopperRedemptionListApi(ShopperApiView):
    """The shopper's own reward redemptions and discount codes, newest first."""

    required_scope = "customer:frontend"

    @extend_schema(responses=RedemptionListOutputSerializer)
    def get(self, request):
        redemptions = reward_redemption_list(merchant=request.merchant, customer=request.customer)
        return self.ok(redemptions=RedemptionOutputSerializer(redemptions, many=True).data)


class ShopperReferralLinkApi(ShopperApiView):
    """The shopper's referral code and link, created on the first request."""

    required_scope = "customer:frontend"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        link = services.referral_link_get_or_create(merchant=request.merchant, customer=request.customer)
        return self.ok(referral_link={"code": link.code, "url": referral_url(request.merchant, link.code)})


class ReferralLookupApi(ShopperApiView):
    """What a referral code offers at this shop; never who the advocate is. Anonymous allowed."""

    required_scope = STOREFRONT
    rate_limit_group = "referral_lookup"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, code):
        link = services.referral_link_resolve(merchant=request.merchant, code=code, customer=request.customer)
        offer = storefront_selectors.referral_offer_get(merchant=request.merchant)
        return self.ok(referral={"code": link.code, **offer}, shop={"name": request.merchant.name})
