"""Customer metafield copies converge to the ledger (RELIABILITY C6), against the fake Shopify."""

import pytest
from django.db.models import F, Value
from django.db.models.functions import Concat

from apps.core.models import Customer
from apps.core.services.ledger import points_earn
from apps.shopify.metafields import (
    CUSTOMER_KEYS,
    _ledger_values,
    customer_gid,
    customer_metafields_drifted_page,
    customer_metafields_sweep,
    customer_metafields_sync,
    customer_metafields_sync_task,
    shop_config_sync,
)
from apps.shopify.models import MetafieldCopy, ShopifyInstallation
from tests.conftest import wait_for
from tests.factories import CustomerFactory, MerchantFactory, VipTierFactory
from tests.fakes.shopify_ops_metafields import metafield_get, metafield_tamper
from tests.shopify_helpers import shopify_connect


def _sets(fake, shop):
    return [variables["metafields"] for domain, variables in fake.calls_of("CustomerMetafieldsSet") if domain == shop]


def _assert_converged(fake, merchant):
    """Every key of every customer: Shopify's value = the ledger = our copy, digests in step."""
    customers = list(Customer.objects.filter(merchant=merchant).values_list("id", flat=True))
    ledger = _ledger_values(merchant.pk, customers)
    copies = {(c.customer_id, c.key): c for c in MetafieldCopy.objects.filter(merchant=merchant)}
    mismatches = []
    for cid, row in ledger.items():
        for key in CUSTOMER_KEYS:
            stored = metafield_get(fake, merchant.shop_domain, customer_gid(row.shopify_customer_id), key)
            copy = copies.get((cid, key))
            shopify_value = stored["value"] if stored else None
            copy_state = (copy.value, copy.compare_digest) if copy else (None, None)
            shopify_state = (shopify_value, stored["digest"]) if stored else (None, None)
            if shopify_value != row.values[key] or copy_state != shopify_state:
                mismatches.append((cid, key, row.values[key], shopify_value, copy_state[0]))
    assert mismatches == []
    assert customer_metafields_drifted_page(merchant=merchant) == []


@pytest.fixture
def shop(merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    return merchant


def test_changes_are_written_25_metafields_a_call_and_recorded(shop, fake_shopify):
    gold = VipTierFactory(merchant=shop, name={"en": "Gold", "de": "Gold"}, min_lifetime_points=500)
    customers = CustomerFactory.create_batch(60, merchant=shop, points_balance=40, lifetime_points=40)
    Customer.objects.filter(pk=customers[0].pk).update(vip_tier=gold, churn_score=0.73, shared_customer_id="SHARED_C1")

    first = customer_metafields_sync(merchant=shop, customers=customers)

    # points_balance and lifecycle_stage for all 60, plus the 3 optional keys of one customer.
    assert first.written == 123 and [len(batch) for batch in _sets(fake_shopify, shop.shop_domain)] == [
        25,
        25,
        25,
        25,
        23,
    ]
    gid = customer_gid(customers[0].shopify_customer_id)
    assert metafield_get(fake_shopify, shop.shop_domain, gid, "vip_tier")["value"] == "Gold"
    assert metafield_get(fake_shopify, shop.shop_domain, gid, "churn_score")["value"] == "0.7300"
    assert metafield_get(fake_shopify, shop.shop_domain, gid, "points_balance")["type"] == "number_integer"
    _assert_converged(fake_shopify, shop)

    fake_shopify.calls.clear()
    Customer.objects.filter(merchant=shop).update(points_balance=F("points_balance") + 10)

    second = customer_metafields_sync(merchant=shop, customers=[c.pk for c in customers])

    assert [len(batch) for batch in _sets(fake_shopify, shop.shop_domain)] == [25, 25, 10]
    assert {m["key"] for batch in _sets(fake_shopify, shop.shop_domain) for m in batch} == {"points_balance"}
    assert second.written == 60 and second.unchanged == 63  # lifecycle_stage of all, 3 keys of one
    _assert_converged(fake_shopify, shop)


def test_nothing_unchanged_is_written_again(shop, fake_shopify):
    customers = CustomerFactory.create_batch(3, merchant=shop)
    customer_metafields_sync(merchant=shop, customers=customers)
    fake_shopify.calls.clear()

    report = customer_metafields_sync(merchant=shop, customers=customers)

    assert report.written == 0 and fake_shopify.calls == []


def test_a_copy_changed_in_shopify_is_refused_reread_and_overwritten_with_the_ledger(shop, fake_shopify):
    customers = CustomerFactory.create_batch(30, merchant=shop, points_balance=100)
    customer_metafields_sync(merchant=shop, customers=customers)
    victim = customers[7]
    gid = customer_gid(victim.shopify_customer_id)
    metafield_tamper(fake_shopify, shop.shop_domain, gid, "points_balance", "999999")
    Customer.objects.filter(merchant=shop).update(points_balance=150)
    fake_shopify.calls.clear()

    report = customer_metafields_sync(merchant=shop, customers=customers)

    assert report.conflicts == 1 and report.failed == []
    reads = fake_shopify.calls_of("CustomerMetafieldsRead")
    assert [variables["ids"] for _shop, variables in reads] == [[gid]]
    # The refused call wrote nothing (atomic); the rest went again, then the victim with its fresh digest.
    assert metafield_get(fake_shopify, shop.shop_domain, gid, "points_balance")["value"] == "150"
    assert all(len(batch) <= 25 for batch in _sets(fake_shopify, shop.shop_domain))
    _assert_converged(fake_shopify, shop)


def test_a_metafield_created_behind_our_back_before_the_first_write_is_overwritten(shop, fake_shopify):
    customer = CustomerFactory(merchant=shop, points_balance=20)
    gid = customer_gid(customer.shopify_customer_id)
    metafield_tamper(fake_shopify, shop.shop_domain, gid, "points_balance", "5000")

    report = customer_metafields_sync(merchant=shop, customers=[customer])

    assert report.conflicts == 1
    first_try = _sets(fake_shopify, shop.shop_domain)[0]
    assert {m["key"]: m["compareDigest"] for m in first_try} == {"points_balance": None, "lifecycle_stage": None}
    assert metafield_get(fake_shopify, shop.shop_domain, gid, "points_balance")["value"] == "20"
    _assert_converged(fake_shopify, shop)


def test_a_value_gone_from_the_ledger_is_deleted_from_shopify(shop, fake_shopify):
    gold = VipTierFactory(merchant=shop, min_lifetime_points=500)
    customer = CustomerFactory(merchant=shop, vip_tier=gold, churn_score=0.2)
    customer_metafields_sync(merchant=shop, customers=[customer])
    Customer.objects.filter(pk=customer.pk).update(vip_tier=None, churn_score=None)

    report = customer_metafields_sync(merchant=shop, customers=[customer])

    assert report.deleted == 2
    gid = customer_gid(customer.shopify_customer_id)
    assert metafield_get(fake_shopify, shop.shop_domain, gid, "vip_tier") is None
    assert not MetafieldCopy.objects.filter(customer=customer, key__in=["vip_tier", "churn_score"]).exists()
    _assert_converged(fake_shopify, shop)


def test_the_sweep_repairs_every_drifted_copy(shop, fake_shopify):
    silver = VipTierFactory(merchant=shop, name={"en": "Silver"}, min_lifetime_points=100)
    customers = CustomerFactory.create_batch(120, merchant=shop, points_balance=10, churn_score=0.5)
    assert customer_metafields_sweep(merchant=shop).written == 360
    ids = [c.pk for c in customers]
    # Drift of every kind: the ledger moved without a sync…
    Customer.objects.filter(pk__in=ids[:40]).update(points_balance=F("points_balance") + 7)
    Customer.objects.filter(pk__in=ids[40:50]).update(
        vip_tier=silver, shared_customer_id=Concat(Value("SHARED_"), "id")
    )
    Customer.objects.filter(pk__in=ids[50:55]).update(churn_score=None)
    # …copies lost…
    MetafieldCopy.objects.filter(customer_id__in=ids[55:75], key="lifecycle_stage").delete()
    # …and values changed in Shopify behind our back, some where the ledger moved too.
    for customer in customers[30:35] + customers[80:110]:
        metafield_tamper(
            fake_shopify, shop.shop_domain, customer_gid(customer.shopify_customer_id), "churn_score", "0.01"
        )
    assert len(customer_metafields_drifted_page(merchant=shop)) == 75

    report = customer_metafields_sweep(merchant=shop, verify_shopify=True, page_size=30)

    assert report.failed == [] and report.verified == 120
    assert report.drift_found == 35 + 20  # the Shopify edits and the lost copies
    _assert_converged(fake_shopify, shop)
    assert all(len(batch) <= 25 for batch in _sets(fake_shopify, shop.shop_domain))


def test_the_plain_sweep_repairs_ledger_drift_and_meets_shopify_edits_through_the_digest(shop, fake_shopify):
    customers = CustomerFactory.create_batch(50, merchant=shop, points_balance=10)
    customer_metafields_sweep(merchant=shop)
    Customer.objects.filter(merchant=shop).update(points_balance=12)
    for customer in customers[::5]:
        metafield_tamper(
            fake_shopify, shop.shop_domain, customer_gid(customer.shopify_customer_id), "points_balance", "1"
        )

    report = customer_metafields_sweep(merchant=shop)

    assert report.conflicts == 10 and report.written == 50
    _assert_converged(fake_shopify, shop)


def test_throttling_and_server_errors_are_waited_out(shop, fake_shopify):
    customers = CustomerFactory.create_batch(30, merchant=shop)
    fake_shopify.restore_rate = 2000.0
    fake_shopify.drain(shop.shop_domain)
    fake_shopify.fail_next(2, status=503)

    report = customer_metafields_sync(merchant=shop, customers=customers)

    assert report.written == 60
    _assert_converged(fake_shopify, shop)


def test_no_customer_of_another_merchant_reaches_this_shop(shop, fake_shopify):
    other = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    shopify_connect(fake_shopify, other)
    ours = CustomerFactory.create_batch(3, merchant=shop, points_balance=11)
    # Same Shopify customer id in both shops: the shop decides, never the id.
    theirs = [CustomerFactory(merchant=other, shopify_customer_id=ours[0].shopify_customer_id, points_balance=99)]
    theirs += CustomerFactory.create_batch(2, merchant=other, points_balance=99)

    report = customer_metafields_sync(merchant=shop, customers=ours + theirs)
    customer_metafields_sweep(merchant=other)

    assert report.customers == 3
    our_gids = {customer_gid(c.shopify_customer_id) for c in ours}
    written_to_ours = {m["ownerId"] for batch in _sets(fake_shopify, shop.shop_domain) for m in batch}
    assert written_to_ours == our_gids
    shared_gid = customer_gid(ours[0].shopify_customer_id)
    assert metafield_get(fake_shopify, shop.shop_domain, shared_gid, "points_balance")["value"] == "11"
    assert metafield_get(fake_shopify, other.shop_domain, shared_gid, "points_balance")["value"] == "99"
    assert set(MetafieldCopy.objects.filter(merchant=shop).values_list("customer_id", flat=True)) == {
        c.pk for c in ours
    }
    _assert_converged(fake_shopify, shop)
    _assert_converged(fake_shopify, other)


def test_shop_config_is_written_as_json_on_the_shop_and_the_shop_gid_kept(shop, fake_shopify):
    shop.program_settings.multi_store_config = {"shared_stores": ["alpha-pets-eu.myshopify.com"]}
    shop.program_settings.theme_extension_config = {"widget": "rewards_panel", "placement": "footer"}
    shop.program_settings.save()

    digests = shop_config_sync(merchant=shop)
    shop_config_sync(merchant=shop)

    installation = ShopifyInstallation.objects.get(merchant=shop)
    shop_gid = fake_shopify.shop(shop.shop_domain).gid
    assert installation.shop_gid == shop_gid
    assert len(fake_shopify.calls_of("ShopIdentity")) == 1  # fetched once, then stored
    stored = metafield_get(fake_shopify, shop.shop_domain, shop_gid, "theme_extension_config")
    assert stored["type"] == "json" and stored["value"] == '{"placement":"footer","widget":"rewards_panel"}'
    assert set(digests) == {"multi_store_config", "theme_extension_config"}


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_syncs_and_fires_the_tier_changed_flow_trigger(celery_worker_process, fake_shopify):
    merchant = MerchantFactory()
    shopify_connect(fake_shopify, merchant)
    VipTierFactory(merchant=merchant, name={"en": "Bronze"}, min_lifetime_points=0)
    VipTierFactory(merchant=merchant, name={"en": "Gold"}, min_lifetime_points=500)
    customer = CustomerFactory(merchant=merchant)
    points_earn(merchant=merchant, customer=customer, points=100, idempotency_key="order-1")
    gid = customer_gid(customer.shopify_customer_id)

    customer_metafields_sync_task.delay(merchant_id=merchant.pk, customer_ids=[customer.pk])

    wait_for(
        lambda: (metafield_get(fake_shopify, merchant.shop_domain, gid, "vip_tier") or {}).get("value") == "Bronze"
    )
    points_earn(merchant=merchant, customer=customer, points=450, idempotency_key="order-2")

    customer_metafields_sync_task.delay(merchant_id=merchant.pk, customer_ids=[customer.pk])

    wait_for(lambda: fake_shopify.shop(merchant.shop_domain).data.get("flow_triggers"))
    assert fake_shopify.shop(merchant.shop_domain).data["flow_triggers"] == [
        (
            "loyalnest-tier-changed",
            {
                "customer_id": int(customer.shopify_customer_id),
                "Previous tier": "Bronze",
                "New tier": "Gold",
                "Points balance": 550,
            },
        )
    ]
    assert metafield_get(fake_shopify, merchant.shop_domain, gid, "points_balance")["value"] == "550"
    _assert_converged(fake_shopify, merchant)
