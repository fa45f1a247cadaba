"""Tenant isolation (RELIABILITY B1–B3)."""

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from django_scopes import ScopeError, scope
from django_scopes.manager import DisabledQuerySet

from apps.core.models import Customer, Merchant
from apps.core.services import points_earn
from apps.core.tenancy import merchant_scope, scopes_disabled
from tests.factories import CustomerFactory, RewardFactory
from tests.shopify_helpers import auth_header

TENANT_FIELDS = ("merchant",)


def _tenant_models():
    found = []
    for model in apps.get_models():
        if not model.__module__.startswith("apps."):
            continue
        fields = {f.name: f for f in model._meta.get_fields() if getattr(f, "many_to_one", False) or f.one_to_one}
        if any(name in fields and fields[name].related_model is Merchant for name in TENANT_FIELDS):
            found.append(model)
    return found


def test_every_tenant_model_is_found():
    names = {m.__name__ for m in _tenant_models()}
    assert {"Customer", "Order", "PointsTransaction", "AuditLog", "StaffMember", "ProgramSettings"} <= names


@pytest.mark.parametrize("model", _tenant_models(), ids=lambda m: m._meta.label)
def test_every_tenant_model_fails_closed_without_a_scope(model):
    """B1: a tenant query outside a merchant scope raises instead of reading every shop."""
    with scope():  # an active but empty scope: what a request without a merchant would have
        assert isinstance(model._default_manager.get_queryset(), DisabledQuerySet), (
            f"{model._meta.label} is not scoped by merchant"
        )
        with pytest.raises(ScopeError):
            model._default_manager.all()
        with pytest.raises(ScopeError):
            model._default_manager.filter(pk="x")


def test_a_scope_shows_only_that_merchant(merchant, other_merchant):
    mine = CustomerFactory(merchant=merchant)

    with merchant_scope(merchant):
        assert list(Customer.objects.values_list("id", flat=True)) == [mine.pk]


def test_merchant_scope_refuses_no_merchant():
    with pytest.raises(ValueError), merchant_scope(None):
        pass


# --- B2: merchant A's token with merchant B's ids on every route -------------------------------


def _api_routes():
    routes = []

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                routes.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns, "/")
    return [r for r in routes if r.startswith("/v1/api/") and "<" in r]


@pytest.fixture
def foreign_ids(other_merchant):
    b = other_merchant["merchant"]
    customer = other_merchant["customers"][0]
    entry = points_earn(merchant=b, customer=customer, points=100, idempotency_key="b-seed").transaction
    reward = RewardFactory(merchant=b)
    # Feature apps' ids: one row of each, belonging to the other merchant.
    from apps.gamification.models import Badge, Team
    from apps.rfm.models import RfmExperiment

    badge = Badge.objects.create(merchant=b, name={"en": "B only"}, rule={"type": "first_purchase"})
    team = Team.objects.create(merchant=b, name={"en": "B team"}, cycle="2026-11")
    experiment = RfmExperiment.objects.create(merchant=b, name="B test", thresholds_a={}, thresholds_b={})
    return {
        "customer_id": customer.pk,
        "staff_id": other_merchant["owner"].pk,
        "transaction_id": entry.pk,
        "reward_id": reward.pk,
        "badge_id": badge.pk,
        "team_id": team.pk,
        "experiment_id": experiment.pk,
    }


FOREIGN_ID_NAMES = {"customer_id", "staff_id", "transaction_id", "reward_id", "badge_id", "team_id", "experiment_id"}


def test_every_route_with_an_id_is_covered():
    assert _api_routes(), "no API route takes an id"
    for route in _api_routes():
        for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
            assert name in FOREIGN_ID_NAMES, f"add {name} to foreign_ids"


@pytest.mark.parametrize("method", ["get", "post", "put"])
def test_another_merchants_ids_are_404_on_every_route(api, owner, other_merchant, foreign_ids, method):
    foreign_data = {str(v) for v in foreign_ids.values()} | {other_merchant["merchant"].shop_domain}
    with scopes_disabled():
        before = (Customer.objects.get(pk=foreign_ids["customer_id"]).points_balance,)
    for route in _api_routes():
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: foreign_ids[m.group(1)], route)
        response = getattr(api, method)(path, data=foreign_ids, format="json", **auth_header(owner))
        if response.status_code == 405:
            continue
        assert response.status_code in (400, 404), f"{method.upper()} {route} answered {response.status_code}"
        text = response.content.decode()
        assert not any(value in text for value in foreign_data), f"{route} leaked another merchant's data"
    with scopes_disabled():
        assert (Customer.objects.get(pk=foreign_ids["customer_id"]).points_balance,) == before


def test_body_ids_of_another_merchant_are_404(api, owner, foreign_ids):
    for path, payload in [
        ("/v1/api/points/adjust", {"customer_id": foreign_ids["customer_id"], "points": 5, "reason": "x"}),
        ("/v1/api/points/redeem", {"customer_id": foreign_ids["customer_id"], "points": 5}),
        ("/v1/api/points/reverse", {"transaction_id": foreign_ids["transaction_id"], "reason": "x"}),
    ]:
        response = api.post(path, data=payload, format="json", **auth_header(owner))
        assert response.status_code == 404, path
    with scopes_disabled():
        assert Customer.objects.get(pk=foreign_ids["customer_id"]).points_balance == 100
