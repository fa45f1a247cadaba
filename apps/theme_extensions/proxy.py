"""Storefront endpoints of the widgets, served through the Shopify app proxy.

Mounted at `proxy/v1/api/widgets` (the script calls `/apps/loyalnest/v1/api/widgets…`):
- `GET widgets` (a logged-in shopper): balance, tier and progress, next reward, contributions;
- `GET widgets/content` (anyone): the shop's widget content and the visitor's A/B variants;
- `POST widgets/events` (anyone, rate-limited, fails open): impressions and clicks.
"""

import re

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core.api.base import LocaleField, StrictSerializer
from apps.shopify.proxy import STOREFRONT, ShopperApiView

from .config import WIDGETS
from .models import WidgetEventKind
from .registry import shopper_lookups
from .selectors import assignments_for, shopper_widget_get, widget_content_get
from .services import widget_events_record

VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_EVENTS = 20


def _visitor(request) -> str:
    visitor = request.query_params.get("visitor_id", "")
    return visitor if VISITOR_ID.match(visitor) else "anonymous"


class ShopperWidgetApi(ShopperApiView):
    """The logged-in shopper's widget data, in the shopper's locale."""

    required_scope = "customer:frontend"
    rate_limit_group = "widgets"

    def shopper_lookups(self, merchant):
        # Every contributor's per-shopper reads ride on the shopper lookup: one query a request.
        return shopper_lookups(merchant)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data = shopper_widget_get(merchant=request.merchant, customer=request.customer, locale=request.locale)
        return self.ok(**data)


class WidgetContentApi(ShopperApiView):
    """The shop's widget content (rewards, tiers, texts) and the visitor's A/B variants."""

    required_scope = STOREFRONT
    rate_limit_group = "widgets"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        content = widget_content_get(merchant=request.merchant, locale=request.locale)
        visitor = request.customer.shopify_customer_id if request.customer else _visitor(request)
        return self.ok(content=content, assignments=assignments_for(content, visitor), shopper=None, text={})


class WidgetEventSerializer(serializers.Serializer):
    widget = serializers.ChoiceField(choices=WIDGETS)
    variant = serializers.RegexField(r"^[a-z0-9_-]{1,20}$")
    placement = serializers.RegexField(r"^[a-z_]{0,32}$", allow_blank=True)
    kind = serializers.ChoiceField(choices=WidgetEventKind.values)


class WidgetEventApi(ShopperApiView):
    """Record impressions (`theme_widget_rendered`) and clicks of the widgets; at most 20 a call."""

    required_scope = STOREFRONT
    rate_limit_group = "widget_events"
    rate_limit_fail_open = True  # counters only: with Redis down, keep counting

    class InputSerializer(StrictSerializer):
        visitor_id = serializers.CharField(max_length=64, required=False)
        events = WidgetEventSerializer(many=True, allow_empty=False, max_length=MAX_EVENTS)
        locale = LocaleField()

        def validate_visitor_id(self, value):
            if not VISITOR_ID.match(value) and value != "anonymous":
                raise serializers.ValidationError(_("This visitor id is not valid."))
            return value

    @extend_schema(request=InputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        visitor = request.customer.pk if request.customer is not None else data.get("visitor_id") or "anonymous"
        recorded = widget_events_record(
            merchant=request.merchant, visitor=visitor, events=data["events"], locale=request.locale
        )
        return self.ok(status=202, recorded=recorded)
