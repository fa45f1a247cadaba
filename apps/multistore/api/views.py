"""POST /v1/api/points/sync (the seeds' multi-store sync) and the store-group endpoints the
merchant page calls (session token). Views validate and call one service."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from apps.core import errors
from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer
from apps.core.models import Customer

from .. import selectors, services
from ..models import ReviewStatus

SYNC_OUTPUT = inline_serializer(
    "PointsSyncOutput",
    {
        "status": serializers.CharField(),
        "points_balance": serializers.IntegerField(),
        "stores": serializers.ListField(child=serializers.DictField()),
    },
)


class PointsSyncInputSerializer(StrictSerializer):
    customer_id = serializers.CharField(max_length=64)
    store_ids = serializers.ListField(child=serializers.CharField(max_length=255), max_length=50, allow_empty=True)
    locale = LocaleField()


class PointsSyncApi(MerchantApiView):
    """Bring the listed stores' metafield copies of a shared customer up to the shared ledger."""

    required_scope = "admin:points"

    @extend_schema(request=PointsSyncInputSerializer, responses=SYNC_OUTPUT)
    def post(self, request):
        data = self.validated(PointsSyncInputSerializer, request.data)
        customer = (
            Customer.objects.filter(merchant=request.merchant, pk=data["customer_id"]).first()
            or Customer.objects.filter(merchant=request.merchant, shopify_customer_id=data["customer_id"]).first()
        )
        if customer is None:
            raise errors.NotFound(_("This customer does not exist."))
        result = services.points_sync(
            merchant=request.merchant,
            customer=customer,
            store_ids=data["store_ids"],
            locale=data.get("locale") or request.locale,
            actor=request.staff,
        )
        error = None
        if result.error:
            error = {"code": result.error, "message": str(_("Some stores could not be updated; they will be retried."))}
        body = {
            "status": result.status,
            "points_balance": result.points_balance,
            "stores": [{"store_id": s.store_id, "status": s.status} for s in result.stores],
            "error": error,
        }
        return Response(body, status=503 if result.status == "failed" else 200)


class InviteCreateInputSerializer(StrictSerializer):
    shop_domain = serializers.RegexField(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$", max_length=255)


class StoreGroupInviteApi(MerchantApiView):
    """Invite another store of the same owner (returns the signed token to open in that store)."""

    required_scope = "admin:points"

    @extend_schema(request=InviteCreateInputSerializer, responses=inline_serializer("InviteOutput", {}))
    def post(self, request):
        data = self.validated(InviteCreateInputSerializer, request.data)
        result = services.group_invite_create(merchant=request.merchant, actor=request.staff, **data)
        return self.ok(
            status=201,
            invite_id=result.invite.pk,
            token=result.token,
            expires_at=result.invite.expires_at.isoformat(),
        )


class InviteAcceptInputSerializer(StrictSerializer):
    token = serializers.CharField(max_length=2000)


class StoreGroupAcceptApi(MerchantApiView):
    """Accept an invite inside the invited store's own admin."""

    required_scope = "admin:points"

    @extend_schema(request=InviteAcceptInputSerializer, responses=inline_serializer("AcceptOutput", {}))
    def post(self, request):
        data = self.validated(InviteAcceptInputSerializer, request.data)
        group = services.group_invite_accept(merchant=request.merchant, actor=request.staff, token=data["token"])
        return self.ok(group_id=group.pk)


class StoreGroupLeaveApi(MerchantApiView):
    required_scope = "admin:points"

    @extend_schema(request=None, responses=inline_serializer("LeaveOutput", {}))
    def post(self, request):
        services.group_leave(merchant=request.merchant, actor=request.staff)
        return self.ok()


class SharingInputSerializer(StrictSerializer):
    tiers = serializers.BooleanField(required=False)
    referrals = serializers.BooleanField(required=False)
    leaderboard = serializers.BooleanField(required=False)


class StoreGroupSharingApi(MerchantApiView):
    required_scope = "admin:points"

    @extend_schema(request=SharingInputSerializer, responses=inline_serializer("SharingOutput", {}))
    def post(self, request):
        data = self.validated(SharingInputSerializer, request.data)
        group = services.group_sharing_update(merchant=request.merchant, actor=request.staff, **data)
        return self.ok(sharing=group.sharing)


class ReviewResolveInputSerializer(StrictSerializer):
    review_id = serializers.CharField(max_length=64)
    decision = serializers.ChoiceField(choices=[ReviewStatus.MERGED, ReviewStatus.KEPT_APART])


class LinkReviewResolveApi(MerchantApiView):
    required_scope = "admin:points"

    @extend_schema(request=ReviewResolveInputSerializer, responses=inline_serializer("ReviewOutput", {}))
    def post(self, request):
        data = self.validated(ReviewResolveInputSerializer, request.data)
        review = services.link_review_resolve(merchant=request.merchant, actor=request.staff, **data)
        return self.ok(review_id=review.pk, review_status=review.status)


class StoreGroupApi(MerchantApiView):
    """The caller's group: members, sharing, pending reviews, accuracy and lag per store."""

    required_scope = "admin:points"

    @extend_schema(responses=inline_serializer("StoreGroupOutput", {}))
    def get(self, request):
        return self.ok(group=selectors.group_overview(merchant=request.merchant))
