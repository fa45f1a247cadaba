"""Merchant API of the referral program: create the referral link (`admin:referrals`) and read
its analytics (`admin:analytics`), exactly as the seeds shape them."""

import json
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core import errors
from apps.core.api.base import LocaleField, MerchantApiView, StrictSerializer
from apps.core.api.idempotency import idempotent
from apps.core.audit import audit_record
from apps.core.streams import stream_append_on_commit
from apps.core.tracking import track_on_commit

from .. import selectors, services
from ..catalogue import referral_url

MAX_RANGE_DAYS = 366


def _check_merchant_id(request, given) -> None:
    """The seeds' merchant ids are accepted, never trusted: only the caller's own shop."""
    if given and given != request.merchant.pk:
        raise errors.NotFound(_("Merchant not found."))


class MerchantReferralCreateApi(MerchantApiView):
    """Create (or return) the caller's merchant referral link."""

    required_scope = "admin:referrals"

    class InputSerializer(StrictSerializer):
        advocate_merchant_id = serializers.CharField(max_length=40)
        locale = LocaleField()

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    @idempotent
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        _check_merchant_id(request, data["advocate_merchant_id"])
        link, created = services.merchant_referral_link_create(
            merchant=request.merchant, actor=request.staff, locale=request.locale
        )
        return self.ok(
            status=201 if created else 200,
            referral_code=link.code,
            referral_url=referral_url(link.code),
            reward_id=link.reward_id,
        )


class DateRangeSerializer(serializers.Serializer):
    start = serializers.DateField(input_formats=["iso-8601"])
    end = serializers.DateField(input_formats=["iso-8601"])

    default_error_messages = {
        "reversed": _("The start date must be on or before the end date."),
        "too_long": _("The date range can span at most %(days)s days."),
    }

    def validate(self, attrs):
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": [self.error_messages["reversed"]]})
        if (attrs["end"] - attrs["start"]).days >= MAX_RANGE_DAYS:
            message = self.error_messages["too_long"] % {"days": MAX_RANGE_DAYS}
            raise serializers.ValidationError({"end": [message]})
        return attrs


class AnalyticsInput(StrictSerializer):
    merchant_id = serializers.CharField(max_length=40, required=False)
    date_range = DateRangeSerializer(required=False)
    locale = LocaleField()


def _query_input(query) -> dict:
    """GET parameters in the seeds' nested shape: `date_range[start]`/`date_range[end]` (or
    `date_range.start`), or `date_range` as a JSON object."""
    data = {}
    for key in query:
        if key in ("merchant_id", "locale"):
            data[key] = query.get(key)
        elif key == "date_range":
            try:
                data["date_range"] = json.loads(query.get(key))
            except ValueError:
                data["date_range"] = query.get(key)
        elif key.startswith(("date_range[", "date_range.")):
            part = key.removeprefix("date_range").strip("[].")
            data.setdefault("date_range", {})
            if isinstance(data["date_range"], dict):
                data["date_range"][part] = query.get(key)
        else:
            data[key] = query.get(key)
    return data


class MerchantReferralAnalyticsApi(MerchantApiView):
    """Clicks, conversions and their ratio over a date range (default: the last 30 days)."""

    required_scope = "admin:analytics"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data = self.validated(AnalyticsInput, _query_input(request.query_params))
        _check_merchant_id(request, data.get("merchant_id"))
        today = timezone.now().date()
        date_range = data.get("date_range") or {"start": today - timedelta(days=29), "end": today}
        start: date = date_range["start"]
        end: date = date_range["end"]
        result = selectors.merchant_referral_analytics(merchant=request.merchant, start=start, end=end)
        analytics = {key: result[key] for key in ("clicks", "conversions", "ctr")}
        merchant = request.merchant
        with transaction.atomic():
            audit_record(
                merchant=merchant,
                actor=request.staff,
                action="merchant_referral_analytics_viewed",
                metadata={"start": start.isoformat(), "end": end.isoformat()},
            )
            stream_append_on_commit(
                merchant_id=merchant.pk,
                key=f"merchant_referral_analytics:{merchant.pk}",
                data={"start": start.isoformat(), "end": end.isoformat(), **analytics},
            )
            track_on_commit(
                "merchant_referral_analytics_viewed",
                merchant=merchant,
                distinct_id=getattr(request.staff, "pk", None) or merchant.pk,
            )
        return self.ok(
            analytics=analytics,
            date_range={"start": start.isoformat(), "end": end.isoformat()},
            series=result["series"],
        )
