"""Rewards redeemed for points become Shopify discount codes (RELIABILITY C2, C3, C5, E2, E3)."""

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.models import AuditLog, Customer, IdempotencyRecord, PointsTransaction, RewardKind
from apps.core.services import points_earn
from apps.shopify.models import RedemptionStatus, RewardRedemption
from apps.shopify.rewards import reward_redeem, reward_redemption_issue
from apps.shopify.tasks import reward_redemption_sweep_task
from tests.conftest import wait_for
from tests.factories import CustomerFactory, RewardFactory
from tests.fakes.shopify_ops_discounts import discounts_of
from tests.shopify_helpers import auth_header, proxy_signed_query, shopify_connect

SHOP = "alpha-pets.myshopify.com"
CREATES = ("RewardDiscountBasicCreate", "RewardDiscountFreeShippingCreate")


def call(api, method, path, customer_id="6001", *, data=None, key=None, shop=SHOP, **params):
    url = f"/proxy/v1/api/{path}?{proxy_signed_query(shop, customer_id, **params)}"
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    if method == "get":
        return api.get(url, **headers)
    return api.post(url, data=data or {}, format="json", **headers)


def creates(fake) -> list[dict]:
    return [variables for name in CREATES for _shop, variables in fake.calls_of(name)]


def entries(customer) -> list[tuple[str, int]]:
    return list(
        PointsTransaction.objects.filter(customer=customer).order_by("created_at").values_list("kind", "points")
    )


def balance(customer) -> int:
    return Customer.objects.get(pk=customer.pk).points_balance


@pytest.fixture
def shopper(merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    customer = CustomerFactory(merchant=merchant, shopify_customer_id="6001")
    points_earn(merchant=merchant, customer=customer, points=1000, idempotency_key="seed-6001")
    return customer


@pytest.fixture
def reward(merchant):
    return RewardFactory(merchant=merchant, points_cost=300, value=Decimal("5.00"), name={"en": "$5 off"})


@pytest.fixture
def foreign(other_merchant):
    """Shop B's shopper (same Shopify customer id as ours), with points and a reward."""
    b = other_merchant["merchant"]
    customer = other_merchant["customers"][0]
    customer.shopify_customer_id = "6001"
    customer.save(update_fields=["shopify_customer_id"])
    points_earn(merchant=b, customer=customer, points=900, idempotency_key="seed-b")
    reward = RewardFactory(merchant=b, points_cost=100, name={"en": "Beta secret reward"})
    redemption = reward_redeem(
        merchant=b, customer=customer, reward=reward, idempotency_key="b-redeem", issue_in_request=True
    )
    return {"merchant": b, "owner": other_merchant["owner"], "customer": customer, "reward": reward, "rdm": redemption}


def leaks(response, foreign) -> list[str]:
    text = response.content.decode()
    values = [foreign["reward"].pk, foreign["rdm"].pk, foreign["rdm"].code, foreign["customer"].pk, "Beta secret"]
    return [value for value in values if value in text]


# --- issuing in the request ------------------------------------------------------------------


def test_redeeming_issues_a_code_only_that_shopper_can_use_once(api, merchant, shopper, reward, fake_shopify):
    response = call(api, "post", "points/redeem", data={"reward_id": reward.pk}, key="r-1")

    assert response.status_code == 201, response.content
    body = response.json()
    redemption = RewardRedemption.objects.get(pk=body["redemption"]["id"])
    assert body["redemption"]["status"] == "issued" and body["redemption"]["code"] == redemption.code
    assert body["redemption"]["points"] == 300 and body["points_balance"] == 700
    [sent] = creates(fake_shopify)
    discount = sent["basicCodeDiscount"]
    assert discount["code"] == redemption.code
    assert discount["context"] == {"customers": {"add": ["gid://shopify/Customer/6001"]}}
    assert discount["usageLimit"] == 1 and discount["appliesOncePerCustomer"] is True
    assert discount["customerGets"] == {
        "value": {"discountAmount": {"amount": "5.00", "appliesOnEachItem": False}},
        "items": {"all": True},
    }
    assert discount["endsAt"] == redemption.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert redemption.expires_at - redemption.created_at == pytest.approx(timedelta(days=90), abs=timedelta(seconds=5))
    stored = discounts_of(fake_shopify, SHOP)[redemption.code]
    assert redemption.status == RedemptionStatus.ISSUED and redemption.shopify_discount_id == stored["id"]
    assert entries(shopper) == [("earn", 1000), ("redeem", -300)] and balance(shopper) == 700
    assert AuditLog.objects.filter(merchant=merchant, action="reward_redeemed", target_id=redemption.pk).count() == 1


def test_a_percentage_reward_sends_a_fraction(api, merchant, shopper, fake_shopify):
    percent = RewardFactory(merchant=merchant, kind=RewardKind.PERCENT_DISCOUNT, value=Decimal("15"), points_cost=200)

    response = call(api, "post", "points/redeem", data={"reward_id": percent.pk})

    assert response.status_code == 201, response.content
    [sent] = creates(fake_shopify)
    assert sent["basicCodeDiscount"]["customerGets"]["value"] == {"percentage": 0.15}


def test_a_free_shipping_reward_creates_a_free_shipping_code(api, merchant, shopper, fake_shopify):
    shipping = RewardFactory(merchant=merchant, kind=RewardKind.FREE_SHIPPING, value=Decimal("0"), points_cost=150)

    response = call(api, "post", "points/redeem", data={"reward_id": shipping.pk})

    assert response.status_code == 201, response.content
    assert fake_shopify.calls_of("RewardDiscountBasicCreate") == []
    [(_shop, sent)] = fake_shopify.calls_of("RewardDiscountFreeShippingCreate")
    discount = sent["freeShippingCodeDiscount"]
    assert discount["code"] == response.json()["redemption"]["code"]
    assert discount["destination"] == {"all": True} and discount["usageLimit"] == 1
    assert discount["context"] == {"customers": {"add": ["gid://shopify/Customer/6001"]}}
    assert discounts_of(fake_shopify, SHOP)[discount["code"]]["kind"] == "free_shipping"


def test_the_same_idempotency_key_answers_with_the_same_code(api, merchant, shopper, reward, fake_shopify):
    first = call(api, "post", "points/redeem", data={"reward_id": reward.pk}, key="same")
    again = call(api, "post", "points/redeem", data={"reward_id": reward.pk}, key="same")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["redemption"] == first.json()["redemption"]
    assert RewardRedemption.objects.filter(customer=shopper).count() == 1
    assert entries(shopper) == [("earn", 1000), ("redeem", -300)] and balance(shopper) == 700
    assert len(creates(fake_shopify)) == 1 and len(discounts_of(fake_shopify, SHOP)) == 1


def test_without_enough_points_nothing_is_written_and_shopify_is_not_called(api, merchant, shopper, fake_shopify):
    dear = RewardFactory(merchant=merchant, points_cost=1001)
    before = (PointsTransaction.objects.count(), IdempotencyRecord.objects.count(), AuditLog.objects.count())

    response = call(api, "post", "points/redeem", data={"reward_id": dear.pk}, key="dear")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insufficient_points"
    assert fake_shopify.calls == [] and RewardRedemption.objects.count() == 0
    assert (PointsTransaction.objects.count(), IdempotencyRecord.objects.count(), AuditLog.objects.count()) == before
    assert balance(shopper) == 1000


# --- Shopify refuses or has it already ---------------------------------------------------------


def test_a_permanent_refusal_fails_and_returns_the_points_exactly_once(api, merchant, shopper, reward, fake_shopify):
    fake_shopify.shop(SHOP).data["discount_errors"] = [
        {"field": ["customerGets"], "code": "INVALID", "message": "Discount is not valid"}
    ]

    response = call(api, "post", "points/redeem", data={"reward_id": reward.pk}, key="refused")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["redemption"]["status"] == "failed" and body["redemption"]["code"] is None
    assert body["points_balance"] == 1000
    redemption = RewardRedemption.objects.get(pk=body["redemption"]["id"])
    assert "Discount is not valid" in redemption.last_error
    assert entries(shopper) == [("earn", 1000), ("redeem", -300), ("reverse", 300)]

    again = reward_redemption_issue(merchant=merchant, redemption_id=redemption.pk)

    assert again.status == RedemptionStatus.FAILED and len(creates(fake_shopify)) == 1
    assert entries(shopper) == [("earn", 1000), ("redeem", -300), ("reverse", 300)] and balance(shopper) == 1000
    assert AuditLog.objects.filter(action="reward_redemption_failed", target_id=redemption.pk).count() == 1


def test_a_code_shopify_already_holds_is_adopted(merchant, shopper, reward, fake_shopify):
    """An earlier attempt created the code but its answer was lost: TAKEN, then look it up."""
    redemption = reward_redeem(
        merchant=merchant, customer=shopper, reward=reward, idempotency_key="lost", issue_in_request=True
    )
    discounts_of(fake_shopify, SHOP)[redemption.code] = {"id": "gid://shopify/DiscountCodeNode/4242", "kind": "basic"}

    issued = reward_redemption_issue(merchant=merchant, redemption_id=redemption.pk)

    assert issued.status == RedemptionStatus.ISSUED
    assert issued.shopify_discount_id == "gid://shopify/DiscountCodeNode/4242"
    assert [v["code"] for _shop, v in fake_shopify.calls_of("RewardDiscountByCode")] == [redemption.code]
    assert entries(shopper) == [("earn", 1000), ("redeem", -300)]


def test_a_retryable_failure_at_the_limit_fails_and_refunds(merchant, shopper, reward, fake_shopify, settings):
    settings.REWARD_REDEMPTION_MAX_ATTEMPTS = 1
    redemption = reward_redeem(
        merchant=merchant, customer=shopper, reward=reward, idempotency_key="limit", issue_in_request=True
    )
    fake_shopify.fail_next(3, status=503)

    failed = reward_redemption_issue(merchant=merchant, redemption_id=redemption.pk, in_request=True)

    assert failed.status == RedemptionStatus.FAILED and failed.attempts == 1
    assert entries(shopper) == [("earn", 1000), ("redeem", -300), ("reverse", 300)]


# --- Shopify unavailable: the worker finishes -------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_shopify_down_in_the_request_answers_pending_and_the_worker_issues(
    api, merchant, shopper, reward, fake_shopify, celery_worker_process
):
    fake_shopify.fail_next(1, status=503)

    response = call(api, "post", "points/redeem", data={"reward_id": reward.pk}, key="later")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["redemption"]["status"] == "pending" and body["redemption"]["code"] is None
    assert body["points_balance"] == 700
    pk = body["redemption"]["id"]
    wait_for(lambda: RewardRedemption.objects.get(pk=pk).status == RedemptionStatus.ISSUED)
    redemption = RewardRedemption.objects.get(pk=pk)
    assert redemption.attempts == 2 and redemption.code in discounts_of(fake_shopify, SHOP)
    assert entries(shopper) == [("earn", 1000), ("redeem", -300)]
    listed = call(api, "get", "redemptions").json()["redemptions"]
    assert [(r["id"], r["status"], r["code"]) for r in listed] == [(pk, "issued", redemption.code)]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_sweep_requeues_stale_pending_redemptions(merchant, shopper, reward, fake_shopify, celery_worker_process):
    stale = reward_redeem(
        merchant=merchant, customer=shopper, reward=reward, idempotency_key="stale", issue_in_request=True
    )
    fresh = reward_redeem(
        merchant=merchant, customer=shopper, reward=reward, idempotency_key="fresh", issue_in_request=True
    )
    RewardRedemption.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=1))

    queued = reward_redemption_sweep_task()

    assert queued == 1
    wait_for(lambda: RewardRedemption.objects.get(pk=stale.pk).status == RedemptionStatus.ISSUED)
    assert RewardRedemption.objects.get(pk=fresh.pk).status == RedemptionStatus.PENDING
    assert list(discounts_of(fake_shopify, SHOP)) == [stale.code]


# --- tenancy and the lists ---------------------------------------------------------------------


def test_another_shops_reward_cannot_be_redeemed_or_seen(api, merchant, shopper, reward, foreign, fake_shopify):
    b_before = (balance(foreign["customer"]), PointsTransaction.objects.filter(merchant=foreign["merchant"]).count())

    refused = call(api, "post", "points/redeem", data={"reward_id": foreign["reward"].pk}, key="b")
    mine = call(api, "post", "points/redeem", data={"reward_id": reward.pk})
    listed = call(api, "get", "redemptions")

    assert refused.status_code == 404 and leaks(refused, foreign) == []
    assert listed.status_code == 200 and leaks(listed, foreign) == []
    assert [r["id"] for r in listed.json()["redemptions"]] == [mine.json()["redemption"]["id"]]
    assert [shop for shop, _variables in fake_shopify.calls_of("RewardDiscountBasicCreate")] == [SHOP]
    assert RewardRedemption.objects.filter(merchant=merchant).count() == 1
    assert b_before == (
        balance(foreign["customer"]),
        PointsTransaction.objects.filter(merchant=foreign["merchant"]).count(),
    )


def test_a_shopper_lists_only_their_own_redemptions(api, merchant, shopper, reward, foreign, fake_shopify):
    neighbour = CustomerFactory(merchant=merchant, shopify_customer_id="6002")
    points_earn(merchant=merchant, customer=neighbour, points=500, idempotency_key="seed-6002")
    theirs = call(api, "post", "points/redeem", "6002", data={"reward_id": reward.pk}).json()["redemption"]
    mine = call(api, "post", "points/redeem", data={"reward_id": reward.pk}).json()["redemption"]

    listed = call(api, "get", "redemptions")
    anonymous = call(api, "get", "redemptions", customer_id=None)

    assert [r["id"] for r in listed.json()["redemptions"]] == [mine["id"]]
    assert theirs["code"] not in listed.content.decode() and leaks(listed, foreign) == []
    assert anonymous.status_code in (401, 403) and theirs["code"] not in anonymous.content.decode()


def test_the_merchant_redeems_and_lists_a_customers_redemptions(
    api, merchant, owner, shopper, reward, foreign, fake_shopify
):
    response = api.post(
        "/v1/api/points/redeem",
        {"customer_id": shopper.pk, "reward_id": reward.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="desk-1",
        **auth_header(owner),
    )

    assert response.status_code == 201, response.content
    redemption = RewardRedemption.objects.get(pk=response.json()["redemption"]["id"])
    assert redemption.status == RedemptionStatus.ISSUED and redemption.transaction.actor_id == owner.pk
    assert response.json()["redemption"]["code"] == redemption.code and response.json()["points_balance"] == 700

    listed = api.get(f"/v1/api/customers/{shopper.pk}/redemptions", **auth_header(owner))

    assert listed.status_code == 200
    assert [(r["id"], r["code"]) for r in listed.json()["redemptions"]] == [(redemption.pk, redemption.code)]
    assert leaks(listed, foreign) == []


def test_the_merchant_api_never_reaches_another_shops_customer_or_reward(
    api, merchant, owner, shopper, reward, foreign, fake_shopify
):
    b_customer = foreign["customer"]
    before = (balance(b_customer), PointsTransaction.objects.count(), RewardRedemption.objects.count())

    listed = api.get(f"/v1/api/customers/{b_customer.pk}/redemptions", **auth_header(owner))
    their_customer = api.post(
        "/v1/api/points/redeem",
        {"customer_id": b_customer.pk, "reward_id": reward.pk},
        format="json",
        **auth_header(owner),
    )
    their_reward = api.post(
        "/v1/api/points/redeem",
        {"customer_id": shopper.pk, "reward_id": foreign["reward"].pk},
        format="json",
        **auth_header(owner),
    )

    assert (listed.status_code, their_customer.status_code, their_reward.status_code) == (404, 404, 404)
    for response in (listed, their_customer, their_reward):
        assert leaks(response, foreign) == []
    assert before == (balance(b_customer), PointsTransaction.objects.count(), RewardRedemption.objects.count())
    assert creates(fake_shopify) == []


# --- admin ---------------------------------------------------------------------------------------


def test_the_admin_lists_redemptions_read_only_and_retries_pending_ones(
    client, django_user_model, merchant, shopper, reward, foreign, fake_shopify
):
    staff = django_user_model.objects.create_superuser("ops", "ops@loyalnest.example", "pw")
    client.force_login(staff)
    pending = reward_redeem(
        merchant=merchant, customer=shopper, reward=reward, idempotency_key="adm-1", issue_in_request=True
    )
    fake_shopify.shop(SHOP).data["discount_errors"] = [{"field": ["code"], "code": "INVALID", "message": "No"}]
    failed = reward_redeem(
        merchant=merchant, customer=shopper, reward=reward, idempotency_key="adm-2", issue_in_request=True
    )
    reward_redemption_issue(merchant=merchant, redemption_id=failed.pk)
    before = entries(shopper)

    listing = client.get("/admin/shopify/rewardredemption/")
    filtered = client.get("/admin/shopify/rewardredemption/", {"status__exact": "pending", "merchant": SHOP})
    detail = client.get(f"/admin/shopify/rewardredemption/{pending.pk}/change/")
    retried = client.post(
        "/admin/shopify/rewardredemption/",
        {"action": "retry_issuing", "_selected_action": [pending.pk, failed.pk]},
        follow=True,
    )

    assert listing.status_code == detail.status_code == 200
    assert pending.pk in listing.content.decode() and foreign["rdm"].pk in listing.content.decode()
    shown = filtered.content.decode()
    assert pending.pk in shown and failed.pk not in shown and foreign["rdm"].pk not in shown
    assert b'name="status"' not in detail.content  # read-only: no form inputs for the row
    assert client.post(f"/admin/shopify/rewardredemption/{pending.pk}/delete/").status_code == 403
    assert retried.status_code == 200
    assert "1 redemption queued for issuing." in retried.content.decode()
    retries = AuditLog.objects.filter(action="reward_redemption_retried")
    assert [(a.target_id, a.staff_user_id) for a in retries] == [(pending.pk, staff.pk)]
    assert RewardRedemption.objects.get(pk=failed.pk).status == RedemptionStatus.FAILED
    assert entries(shopper) == before
