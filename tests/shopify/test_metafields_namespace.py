"""Issue 9: LoyalNest's metafields live in the app-owned namespace `$app:loyalnest`; shops synced
before keep public `loyalnest` copies until `metafields_namespace_migrate` retires them."""

import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.core.models import AuditLog, Customer
from apps.shopify.metafields import (
    CUSTOMER_KEYS,
    NAMESPACE,
    _ledger_values,
    customer_gid,
    customer_metafields_sweep,
    customer_metafields_sync,
    legacy_namespace_retire,
    namespace_is_ours,
)
from apps.shopify.metafields.legacy import _shop_metafield_writers
from apps.shopify.metafields.spec import TYPES
from apps.shopify.models import MetafieldCopy
from tests.factories import CustomerFactory, VipTierFactory
from tests.fakes.shopify_ops_metafields import APP_ID, metafield_get, metafield_tamper, metafields_of
from tests.shopify_helpers import shopify_connect

RESOLVED = f"app--{APP_ID}--loyalnest"


@pytest.fixture
def shop(merchant, fake_shopify):
    shopify_connect(fake_shopify, merchant)
    return merchant


def test_the_namespace_is_recognised_as_sent_and_as_shopify_answers_it():
    assert NAMESPACE == "$app:loyalnest"
    assert namespace_is_ours("$app:loyalnest") and namespace_is_ours(RESOLVED)
    assert namespace_is_ours("app--1--loyalnest")
    for other in ("loyalnest", "$app", f"app--{APP_ID}", f"{RESOLVED}x", f"app--{APP_ID}--other", "custom", None):
        assert not namespace_is_ours(other), other


def test_customer_metafields_are_written_app_owned_and_recorded_with_the_resolved_answer(shop, fake_shopify):
    gold = VipTierFactory(merchant=shop, name={"en": "Gold"}, min_lifetime_points=0)
    customers = CustomerFactory.create_batch(6, merchant=shop, points_balance=30, vip_tier=gold)

    report = customer_metafields_sync(merchant=shop, customers=customers)

    sent = [m for _shop, v in fake_shopify.calls_of("CustomerMetafieldsSet") for m in v["metafields"]]
    assert report.written == 18 and {m["namespace"] for m in sent} == {"$app:loyalnest"}
    assert metafields_of(fake_shopify, shop.shop_domain, "loyalnest") == {}  # nothing public
    stored = metafields_of(fake_shopify, shop.shop_domain, RESOLVED)
    assert len(stored) == 18  # points, tier, lifecycle stage
    # Shopify answered `app--{id}--loyalnest`: the digests of that answer are the ones recorded.
    for copy in MetafieldCopy.objects.filter(merchant=shop):
        gid = customer_gid(Customer.objects.get(pk=copy.customer_id).shopify_customer_id)
        assert copy.compare_digest == stored[(gid, copy.key)]["digest"] != ""
    assert customer_metafields_sync(merchant=shop, customers=customers).written == 0


def _legacy_shop(fake, merchant):
    """What a shop synced before issue 9 holds: public `loyalnest` copies (one of them injected by
    another app), and our records of them."""
    ledger = _ledger_values(merchant.pk, list(Customer.objects.filter(merchant=merchant).values_list("pk", flat=True)))
    for row in ledger.values():
        for key in CUSTOMER_KEYS:
            if row.values[key] is not None:
                gid = customer_gid(row.shopify_customer_id)
                stored = metafield_tamper(
                    fake, merchant.shop_domain, gid, key, row.values[key], namespace="loyalnest", type_=TYPES[key]
                )
                MetafieldCopy.objects.create(
                    merchant=merchant,
                    customer_id=row.customer_id,
                    key=key,
                    value=row.values[key],
                    compare_digest=stored["digest"],
                    synced_at=timezone.now(),
                )
    shop_gid = fake.shop(merchant.shop_domain).gid
    injected = json.dumps({"widgets": {"rewards_panel": {"texts": {"title": {"en": "<img src=x onerror=alert(1)>"}}}}})
    metafield_tamper(fake, merchant.shop_domain, shop_gid, "theme_extension_config", injected, namespace="loyalnest")
    metafield_tamper(fake, merchant.shop_domain, shop_gid, "rfm_benchmarks", "{}", namespace="loyalnest")
    return len(MetafieldCopy.objects.filter(merchant=merchant))


def test_the_daily_verification_alone_fills_the_app_namespace_of_an_existing_shop(shop, fake_shopify):
    CustomerFactory.create_batch(30, merchant=shop, points_balance=5, churn_score=0.25)
    copies = _legacy_shop(fake_shopify, shop)

    # The hourly sweep compares values with our records, which still match: only the daily pass,
    # which reads the copies back from the new namespace, sees that they are missing there.
    report = customer_metafields_sweep(merchant=shop, verify_shopify=True)

    assert report.failed == [] and report.written == copies == 90
    assert len(metafields_of(fake_shopify, shop.shop_domain, RESOLVED)) == 90
    assert customer_metafields_sweep(merchant=shop, verify_shopify=True).written == 0


def test_the_migration_fills_the_app_namespace_and_deletes_every_public_copy(shop, fake_shopify, capsys):
    CustomerFactory.create_batch(12, merchant=shop, points_balance=8)
    shop.program_settings.theme_extension_config = {"widgets": {}, "program": {"points_per_currency_unit": 2}}
    shop.program_settings.save()
    copies = _legacy_shop(fake_shopify, shop)
    assert len(metafields_of(fake_shopify, shop.shop_domain, "loyalnest")) == copies + 2

    call_command("metafields_namespace_migrate", shop=shop.shop_domain, now=True)

    assert metafields_of(fake_shopify, shop.shop_domain, "loyalnest") == {}
    assert len(metafields_of(fake_shopify, shop.shop_domain, RESOLVED)) == copies + 2  # + the shop config
    config = metafield_get(
        fake_shopify, shop.shop_domain, fake_shopify.shop(shop.shop_domain).gid, "theme_extension_config"
    )
    assert json.loads(config["value"]) == shop.program_settings.theme_extension_config  # from PostgreSQL
    assert f"{copies} written to $app:loyalnest, {copies + 2} public copies deleted" in capsys.readouterr().out
    assert AuditLog.objects.filter(merchant=shop, action="metafields_legacy_namespace_retired").count() == 1
    deletes = [v["metafields"] for _shop, v in fake_shopify.calls_of("LegacyMetafieldsDelete")]
    assert all(len(batch) <= 25 for batch in deletes)
    assert {m["namespace"] for batch in deletes for m in batch} == {"loyalnest"}

    again = legacy_namespace_retire(merchant=shop)  # idempotent: nothing left to move or delete

    assert again["legacy_deleted"] == 0 and again["swept"]["written"] == 0
    assert len(metafields_of(fake_shopify, shop.shop_domain, RESOLVED)) == copies + 2


def test_feature_apps_rewrite_their_shop_metafields_when_the_public_ones_are_retired():
    assert set(_shop_metafield_writers) == {
        "apps.rfm.tasks.rfm_benchmarks_metafield_sync_task",
        "apps.merchant_referrals.tasks.merchant_referral_metafield_task",
        "apps.slack_community.tasks.slack_community_metafields_write_task",
    }
