"""Merchant API of LoyalNest Collective (scope `admin:community`), the seeds' section 6."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core import errors
from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer
from apps.core.api.idempotency import idempotent

from .. import selectors, services
from ..catalogue import BETA_FEATURES

SCOPE = "admin:community"


def _check_merchant_id(request, data) -> None:
    """The seeds' `merchant_id` input is accepted but never trusted: it must be the caller's shop."""
    given = data.pop("merchant_id", None)
    if given is not None and given != request.merchant.pk:
        raise errors.NotFound()


def _member_body(member) -> dict:
    return {
        "community_id": member.pk,
        "slack_user_id": member.slack_user_id,
        "member_status": member.status,
        "created_at": member.created_at,
    }


class SlackJoinApi(MerchantApiView):
    """The seeds' `POST /v1/api/slack/join`: `{status, community_id, error}` (the membership's
    own state is `member_status`: `invited`, or `active` when Slack says the member is already
    in the channels). 202 with `Retry-After` when Slack asked us to wait: the invite is retried."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        merchant_id = serializers.CharField(max_length=40, required=False)
        slack_user_id = serializers.CharField(max_length=32)
        locale = LocaleField()

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        members = selectors.slack_community_member_list(merchant=request.merchant)
        return self.ok(
            members=[_member_body(member) for member in members],
            beta_features=selectors.beta_features_get(merchant=request.merchant),
        )

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        _check_merchant_id(request, data)
        member = services.slack_community_join(
            merchant=request.merchant,
            actor=request.staff,
            slack_user_id=data["slack_user_id"],
            locale=request.locale,
        )
        retry_after = getattr(member, "retry_after", None)
        if member.last_error and member.status == "invited":
            headers = {"Retry-After": str(int(retry_after + 0.999))} if retry_after is not None else None
            return self.ok(status=202, headers=headers, community_id=member.pk, member_status=member.status)
        return self.ok(community_id=member.pk, member_status=member.status)


class SlackBetaApi(MerchantApiView):
    """The seeds' `POST /v1/api/slack/beta`: switch a beta feature on (`enabled`, default true;
    false switches it off). GET lists the catalogue with the merchant's flags."""

    required_scope = SCOPE

    class InputSerializer(StrictSerializer):
        merchant_id = serializers.CharField(max_length=40, required=False)
        feature = serializers.CharField(max_length=64)
        enabled = serializers.BooleanField(required=False, default=True)
        locale = LocaleField()

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        flags = selectors.beta_features_get(merchant=request.merchant)
        return self.ok(
            features=[
                {"feature": key, "label": str(feature.label), "enabled": bool(flags.get(key))}
                for key, feature in BETA_FEATURES.items()
            ]
        )

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        _check_merchant_id(request, data)
        flags = services.beta_feature_set(
            merchant=request.merchant,
            actor=request.staff,
            feature=data["feature"],
            enabled=data["enabled"],
            locale=request.locale,
        )
        return self.ok(beta_features=flags)
