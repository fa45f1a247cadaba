"""POST /v1/api/points/sync and the store-group endpoints, against the fake Shopify."""

import pytest
from django.core import signing
from django.utils import translation

from apps.core import errors
from apps.core.models import AuditLog, Customer, ProgramSettings
from apps.core.services import points_earn
from apps.multistore.models import StoreGroupMember
from apps.multistore.selectors import sync_accuracy
from apps.multistore.services import INVITE_SALT, group_reconcile, shared_customers_link
from apps.notifications.models import Notification
from apps.shopify.metafields import customer_gid
from tests.factories import CustomerFactory, StaffMemberFactory
from tests.fakes.shopify_ops_metafields import metafield_get, metafield_tamper
from tests.shopify_helpers import auth_header, shopify_connect

from .conftest import plus_store

SYNC = "/v1/api/points/sync"


@pytest.fixture
def shared(group, stores, fake_shopify):
    for store, _owner in stores:
        shopify_connect(fake_shopify, store)
    customers = [
        CustomerFactory(
            merchant=store, email="Ana@Example.com ", first_name="Ana", last_name="Silva", locale="de", points_balance=0
        )
        for store, _o in stores
    ]
    shared_customers_link(group=group)
    points_earn(merchant=stores[0][0], customer=customers[0], points=120, idempotency_key="order:1")
    return [Customer.objects.get(pk=c.pk) for c in customers]


def _copy(fake, customer, key="points_balance"):
    stored = metafield_get(fake, customer.merchant.shop_domain, customer_gid(customer.shopify_customer_id), key)
    return stored["value"] if stored else None


def test_sync_brings_every_listed_store_copy_up_to_the_shared_ledger(api, stores, shared, fake_shopify):
    (us, us_owner), (eu, _), (_jp, _) = stores
    response = api.post(
        SYNC,
        {"customer_id": shared[0].pk, "store_ids": [us.pk, eu.shop_domain], "locale": "de"},
        format="json",
        **auth_header(us_owner),
    )
    body = response.json()
    assert response.status_code == 200, body
    assert (body["status"], body["points_balance"], body["error"]) == ("synced", 120, None)
    assert _copy(fake_shopify, shared[0]) == _copy(fake_shopify, shared[1]) == "120"
    assert _copy(fake_shopify, shared[1], "shared_customer_id") == shared[1].shared_customer_id
    assert _copy(fake_shopify, shared[2]) is None  # not listed
    audit = AuditLog.objects.filter(merchant=us, action="multi_store_sync", metadata__event="points_sync").get()
    assert audit.actor_id == us_owner.pk
    notification = Notification.objects.filter(merchant=us, type="points_shared").first()
    assert notification.locale == "de" and notification.customer_id == shared[0].pk


def test_sync_refuses_a_store_outside_the_group_and_changes_nothing(api, stores, shared, fake_shopify):
    (_us, us_owner), *_ = stores
    outsider, _owner = plus_store("stranger.myshopify.com", owner_email="x@y.example", user_id="95001")
    response = api.post(
        SYNC,
        {"customer_id": shared[0].pk, "store_ids": [outsider.pk], "locale": "fr"},
        format="json",
        **auth_header(us_owner),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert fake_shopify.calls_of("CustomerMetafieldsSet") == []
    assert not AuditLog.objects.filter(action="multi_store_sync", metadata__event="points_sync").exists()


def test_sync_without_the_scope_is_403_and_changes_nothing(api, stores, shared, fake_shopify):
    (us, _owner), *_ = stores
    marketer = StaffMemberFactory(merchant=us, shopify_user_id="96001", role="marketer")
    response = api.post(
        SYNC, {"customer_id": shared[0].pk, "store_ids": [], "locale": "en"}, format="json", **auth_header(marketer)
    )
    assert response.status_code == 403
    assert fake_shopify.calls_of("CustomerMetafieldsSet") == []
    assert not AuditLog.objects.filter(action="multi_store_sync", metadata__event="points_sync").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": "x", "store_ids": "not-a-list", "locale": "de"},
        {"store_ids": [], "locale": "de"},
        {"customer_id": "x", "store_ids": [], "locale": "xx"},
    ],
)
def test_bad_input_is_400_in_the_callers_language(api, stores, shared, body):
    (_us, owner), *_ = stores
    response = api.post(SYNC, body, format="json", HTTP_ACCEPT_LANGUAGE="de", **auth_header(owner))
    assert response.status_code == 400
    error = response.json()["error"]
    expected = errors.InvalidLocale if error["code"] == "invalid_locale" else errors.ValidationFailed
    with translation.override("de"):
        assert error["message"] == str(expected.default_message) != "Some fields are missing or invalid."


def test_a_customer_of_another_merchant_is_not_found(api, stores, shared, other_merchant):
    (_us, owner), *_ = stores
    foreign = other_merchant["customers"][0]
    response = api.post(
        SYNC, {"customer_id": foreign.pk, "store_ids": [], "locale": "en"}, format="json", **auth_header(owner)
    )
    assert response.status_code == 404


def test_the_group_api_shows_members_and_never_other_groups(api, stores, shared, other_merchant):
    (_us, owner), *_ = stores
    body = api.get("/v1/api/multi-store/group", **auth_header(owner)).json()
    domains = [s["shop_domain"] for s in body["group"]["stores"]]
    assert domains == ["brand-us.myshopify.com", "brand-eu.myshopify.com", "brand-jp.myshopify.com"]
    outsider = api.get("/v1/api/multi-store/group", **auth_header(other_merchant["owner"])).json()
    assert outsider["group"] is None


def test_reconciliation_makes_every_copy_equal_the_ledger_despite_failures_and_conflicts(stores, shared, fake_shopify):
    group_id = StoreGroupMember.objects.get(merchant=stores[0][0]).group_id
    fake_shopify.failure_rate = 0.2
    for customer in shared:
        metafield_tamper(
            fake_shopify,
            customer.merchant.shop_domain,
            customer_gid(customer.shopify_customer_id),
            "points_balance",
            "7",
        )
    for _round in range(6):
        try:
            group_reconcile(group_id=group_id)
            break
        except Exception:  # noqa: S112  (a 5xx the client gave up on: the next round retries)
            continue
    fake_shopify.failure_rate = 0.0
    group_reconcile(group_id=group_id)
    for customer in shared:
        assert _copy(fake_shopify, customer) == "120"
        assert sync_accuracy(merchant_id=customer.merchant_id)["accuracy"] == 1.0


# --- invites -----------------------------------------------------------------------------------


def test_an_invite_is_accepted_in_the_other_stores_admin(api, stores):
    (us, us_owner), (eu, eu_owner), _ = stores
    created = api.post(
        "/v1/api/multi-store/invites", {"shop_domain": eu.shop_domain}, format="json", **auth_header(us_owner)
    )
    assert created.status_code == 201, created.json()
    token = created.json()["token"]
    accepted = api.post("/v1/api/multi-store/invites/accept", {"token": token}, format="json", **auth_header(eu_owner))
    assert accepted.status_code == 200, accepted.json()
    config = ProgramSettings.objects.get(merchant=eu).multi_store_config
    assert config["shared_stores"] == sorted([us.shop_domain, eu.shop_domain]) or set(config["shared_stores"]) == {
        us.shop_domain,
        eu.shop_domain,
    }
    assert config["shared_leaderboard"] is False and config["shared"]["points"] is True
    again = api.post("/v1/api/multi-store/invites/accept", {"token": token}, format="json", **auth_header(eu_owner))
    assert again.status_code == 400  # single use


def test_an_invite_of_another_owner_a_forged_or_expired_token_is_refused(api, stores, settings):
    (_us, us_owner), (eu, _eu_owner), (jp, jp_owner) = stores
    token = api.post(
        "/v1/api/multi-store/invites", {"shop_domain": eu.shop_domain}, format="json", **auth_header(us_owner)
    ).json()["token"]
    someone = StaffMemberFactory(merchant=eu, shopify_user_id="97001", role="owner", email="other@owner.example")
    assert (
        api.post(
            "/v1/api/multi-store/invites/accept", {"token": token}, format="json", **auth_header(someone)
        ).status_code
        == 403
    )
    # The invite names brand-eu: brand-jp cannot use it.
    assert (
        api.post(
            "/v1/api/multi-store/invites/accept", {"token": token}, format="json", **auth_header(jp_owner)
        ).status_code
        == 400
    )
    forged = signing.dumps({"invite": "inv_x", "shop": eu.shop_domain}, salt="other")
    assert (
        api.post(
            "/v1/api/multi-store/invites/accept", {"token": forged}, format="json", **auth_header(someone)
        ).status_code
        == 400
    )
    settings.MULTISTORE_INVITE_TTL_SECONDS = -1
    assert (
        api.post(
            "/v1/api/multi-store/invites/accept", {"token": token}, format="json", **auth_header(jp_owner)
        ).status_code
        == 400
    )
    assert not StoreGroupMember.objects.filter(merchant__in=[eu, jp]).exists()
    assert INVITE_SALT


def test_sharing_switches_are_audited_and_written_to_every_member(api, group, stores):
    (us, us_owner), (eu, _), _ = stores
    response = api.post(
        "/v1/api/multi-store/sharing", {"leaderboard": True, "tiers": False}, format="json", **auth_header(us_owner)
    )
    assert response.status_code == 200, response.json()
    config = ProgramSettings.objects.get(merchant=eu).multi_store_config
    assert config["shared_leaderboard"] is True and config["shared"]["tiers"] is False
    assert AuditLog.objects.filter(merchant=us, action="shared_leaderboard_updated").count() == 1


def test_a_review_is_resolved_through_the_api_and_another_groups_review_is_404(api, group, stores):
    from apps.multistore.models import LinkReview

    (us, us_owner), (eu, _), _ = stores
    CustomerFactory(merchant=us, email="kim@example.com", first_name="Kim", last_name="Lee")
    CustomerFactory(merchant=eu, email="kim@example.com", first_name="Kimberly", last_name="Park")
    shared_customers_link(group=group)
    review = LinkReview.objects.get(group=group)
    _outsider, outsider_owner = plus_store("lone.myshopify.com", owner_email="l@l.example", user_id="99001")
    denied = api.post(
        "/v1/api/multi-store/reviews/resolve",
        {"review_id": review.pk, "decision": "merged"},
        format="json",
        **auth_header(outsider_owner),
    )
    assert denied.status_code == 404
    assert LinkReview.objects.get(pk=review.pk).status == "pending"
    done = api.post(
        "/v1/api/multi-store/reviews/resolve",
        {"review_id": review.pk, "decision": "kept_apart"},
        format="json",
        **auth_header(us_owner),
    )
    assert done.status_code == 200, done.json()
    assert LinkReview.objects.get(pk=review.pk).status == "kept_apart"
