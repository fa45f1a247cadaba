"""Schemathesis fuzzes the merchant API from its own OpenAPI schema (issue 12, item 5; B2).

The schema is loaded from the Django app in-process (`/v1/api/schema/` over WSGI) and every
`/v1/api/` operation is called with valid and invalid inputs, authenticated as merchant A's owner
with a signed session token. Merchant B is seeded with one row of everything. Asserted for every
call: no 5xx, and no response mentions any of B's ids, shop domain or customer emails. Each
generated case also runs with A's real ids and with B's real ids in the path, so bodies reach the
handlers of existing objects, and B's objects are proved unreachable.

Not fuzzed here: the app proxy (`/proxy/v1/api/…`: Shopify's HMAC query signature, not a session
token — the storefront suites sign those requests) and webhooks (`/shopify/…`: HMAC over the raw
body, not in the schema), `/healthz` (no data, no auth).

Bounded and reproducible: Hypothesis is derandomized, with no example database, and a small
`max_examples` per operation and generation mode.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django_scopes import scopes_disabled
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from apps.core.services import points_earn
from tests.factories import CustomerFactory, MerchantFactory, RewardFactory, StaffMemberFactory
from tests.shopify_helpers import session_token

MAX_EXAMPLES = 8
MERCHANT_API = "/v1/api/"

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


@pytest.fixture(autouse=True)
def _unscoped_setup():
    """Requests here run as in production: scoped by the view, not inside the suite's global
    `scopes_disabled()` (tests/conftest.py); the seeding below disables scopes itself."""
    yield


@pytest.fixture
def _keep_the_test_connection():
    """Django's WSGI handler closes the database connection at the end of each request; the test
    client turns that off (ClientHandler), and so must this in-process WSGI app: the test's
    transaction lives on that connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _seed(merchant, *, shopify_user_id, label):
    from apps.gamification.models import Badge, Team
    from apps.rfm.models import RfmExperiment
    from apps.rfm.presets import industry_of, preset_thresholds

    with scopes_disabled():
        owner = StaffMemberFactory(merchant=merchant, shopify_user_id=shopify_user_id, role="owner")
        customers = CustomerFactory.create_batch(2, merchant=merchant, points_balance=0)
        entry = points_earn(
            merchant=merchant, customer=customers[0], points=100, idempotency_key=f"{label}-seed"
        ).transaction
        reward = RewardFactory(merchant=merchant)
        badge = Badge.objects.create(merchant=merchant, name={"en": f"{label} badge"}, rule={"type": "first_purchase"})
        team = Team.objects.create(merchant=merchant, name={"en": f"{label} team"}, cycle="2026-11")
        thresholds = preset_thresholds(industry_of(merchant))
        experiment = RfmExperiment.objects.create(
            merchant=merchant, name=f"{label} test", thresholds_a=thresholds, thresholds_b=thresholds
        )
    ids = {
        "customer_id": customers[0].pk,
        "staff_id": owner.pk,
        "transaction_id": entry.pk,
        "reward_id": reward.pk,
        "badge_id": badge.pk,
        "team_id": team.pk,
        "experiment_id": experiment.pk,
    }
    return owner, customers, ids


@pytest.fixture
def tenants(db):
    with scopes_disabled():
        a = MerchantFactory(shop_domain="alpha-pets.myshopify.com", name="Alpha Pets")
        b = MerchantFactory(shop_domain="beta-gadgets.myshopify.com", name="Beta Gadgets")
    owner_a, _customers_a, ids_a = _seed(a, shopify_user_id="90001", label="A")
    owner_b, customers_b, ids_b = _seed(b, shopify_user_id="80001", label="B")
    secrets_of_b = {str(v) for v in ids_b.values()} | {b.pk, b.shop_domain, owner_b.pk}
    secrets_of_b |= {c.email for c in customers_b if c.email} | {c.pk for c in customers_b}
    return {"a": a, "owner_a": owner_a, "ids_a": ids_a, "ids_b": ids_b, "secrets_of_b": secrets_of_b}


def _merchant_operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(MERCHANT_API):
            yield operation


def test_the_schema_covers_the_merchant_api(db):
    schema = schemathesis.openapi.from_wsgi("/v1/api/schema/", WSGIHandler())
    paths = {operation.path for operation in _merchant_operations(schema)}
    assert {"/v1/api/customers", "/v1/api/points/adjust", "/v1/api/customers/{customer_id}"} <= paths
    assert len(paths) > 30


def _fuzz(operation, mode, check, tenants):
    """MAX_EXAMPLES cases of one operation in one generation mode, each with the generated path
    ids, then A's and B's real ids."""

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        check(case, None, mode.value)
        if operation.path_parameters:
            check(case, tenants["ids_a"], f"{mode.value}, A's ids")
            check(case, tenants["ids_b"], f"{mode.value}, B's ids")

    fuzz()


@pytest.mark.slow
def test_fuzzing_the_merchant_api_finds_no_5xx_and_no_other_merchants_data(tenants, _keep_the_test_connection):
    schema = schemathesis.openapi.from_wsgi("/v1/api/schema/", WSGIHandler())
    token_subject = (tenants["a"].shop_domain, tenants["owner_a"].shopify_user_id)
    failures = []
    calls = 0

    def check(case, path_ids, label):
        nonlocal calls
        if path_ids is not None:
            case.path_parameters = {
                name: path_ids.get(name, value) for name, value in (case.path_parameters or {}).items()
            }
        token = session_token(token_subject[0], user_id=token_subject[1])
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        calls += 1
        where = f"{case.method} {case.formatted_path} ({label})"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code} for {case.body!r} {case.query!r}")
            return
        text = response.content.decode("utf-8", "replace")
        leaked = sorted(value for value in tenants["secrets_of_b"] if value and value in text)
        if leaked:
            failures.append(f"{where}: answered {response.status_code} with merchant B's {leaked}")

    for operation in _merchant_operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, check, tenants)
            except Unsatisfiable:
                continue  # an operation with nothing to negate (no parameters, no body)

    assert calls > 300
    assert not failures, "\n".join(dict.fromkeys(failures))
