"""The storefront's orjson renderer writes what DRF's JSONRenderer writes."""

import datetime
import json
import uuid
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy, override
from rest_framework.renderers import JSONRenderer

from apps.core.api.renderers import StorefrontJSONRenderer

UTC = datetime.UTC


def sample():
    return {
        "status": "ok",
        "error": None,
        "points_balance": 1250,
        "ratio": 0.1,
        "big": 2**53 + 1,
        "label": gettext_lazy("Not found."),
        "name": "Café «Ünïcode» 日本語 שלום",
        "price": Decimal("12.50"),
        "at": datetime.datetime(2026, 11, 21, 9, 30, 5, 123456, tzinfo=UTC),
        "day": datetime.date(2026, 11, 21),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "tiers": [{"id": "tier_1", "min": 0, "flags": [True, False]}, {"id": "tier_2", "min": 1000, "flags": []}],
        "nested": {"empty": {}, "tuple": (1, 2)},
        "errors": {0: ["Not a valid event."], 2: ["Unknown field."]},
    }


def test_the_same_json_as_drf_writes():
    with override("fr"):
        ours = StorefrontJSONRenderer().render(sample())
        drf = JSONRenderer().render(sample())

    assert json.loads(ours) == json.loads(drf)
    assert json.loads(ours)["label"] == "Introuvable."  # a lazy translation, in the active language
    assert json.loads(ours)["at"] == "2026-11-21T09:30:05.123456Z"
    assert json.loads(ours)["price"] == 12.5  # as DRF's encoder writes a Decimal


def test_an_unknown_type_raises_as_drf_does_instead_of_writing_null():
    with pytest.raises(TypeError):
        StorefrontJSONRenderer().render({"x": object()})
    with pytest.raises(TypeError):
        JSONRenderer().render({"x": object()})


def test_storefront_answers_are_rendered_by_it(api, merchant, other_merchant):
    from tests.factories import CustomerFactory
    from tests.shopify_helpers import proxy_signed_query

    CustomerFactory(merchant=merchant, shopify_customer_id="6001", points_balance=321)
    response = api.get(f"/proxy/v1/api/widgets?{proxy_signed_query(merchant.shop_domain, '6001')}")

    assert response.status_code == 200
    assert isinstance(response.accepted_renderer, StorefrontJSONRenderer)
    assert response["Content-Type"] == "application/json"
    assert response.json()["shopper"]["points_balance"] == 321
    assert other_merchant["merchant"].pk not in response.content.decode()
