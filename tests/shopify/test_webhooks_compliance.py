"""Compliance webhooks for real (A8): export, erase a customer everywhere, erase a shop."""

import json
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection

from apps.core.models import AuditLog, Customer, Merchant, PointsTransaction, ReferralLink
from apps.core.redis import get_redis
from apps.core.services import ledger_balance, points_redeem
from apps.core.streams import stream_append
from apps.shopify.models import ShopifyRefund, WebhookDelivery, WebhookStatus
from apps.shopify.webhooks.compliance import _tenant_models, customer_data_export_read, merchant_column
from tests.shopify.test_webhooks import deliver
from tests.shopify.webhook_support import order_payload, refund_payload

PERSONAL = ["ada@example.com", "Lovelace", "Analytical Row", "+15550001"]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _seed_customer(client, merchant):
    """Ada: orders (one partly refunded), a redemption, a referral link, a customer webhook."""
    deliver(
        client,
        merchant,
        "customers/create",
        {"id": 7001, "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "phone": "+15550001"},
        webhook_id="c",
    )
    deliver(client, merchant, "orders/paid", order_payload(4001, total="300.00"), webhook_id="o1")
    deliver(client, merchant, "orders/paid", order_payload(4002, total="50.00"), webhook_id="o2")
    deliver(client, merchant, "refunds/create", refund_payload(95, 4001, "30.00"), webhook_id="r")
    ada = Customer.objects.get(merchant=merchant, shopify_customer_id="7001")
    points_redeem(merchant=merchant, customer=ada, points=20, idempotency_key="redeem-1")
    ReferralLink.objects.create(merchant=merchant, customer=ada, code="ADA-REF-1")
    ada.refresh_from_db()
    return ada


def _tables_containing(text: str) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT count(*) FROM {quoted} t WHERE t::text ILIKE %s", [f"%{text}%"])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append(table)
    return found


def test_data_request_exports_everything_held_on_the_customer(client, merchant, other_merchant, settings):
    ada = _seed_customer(client, merchant)
    foreign = other_merchant["customers"][0]

    request = {
        "shop_id": 1,
        "shop_domain": merchant.shop_domain,
        "orders_requested": [4001, 4002],
        "customer": {"id": 7001, "email": "ada@example.com", "phone": "+15550001"},
        "data_request": {"id": 9999},
    }
    delivery = deliver(client, merchant, "customers/data_request", request, webhook_id="dr")

    assert delivery.status == WebhookStatus.PROCESSED
    audit = AuditLog.objects.get(merchant=merchant, action="customer_data_exported")
    assert audit.target_id == ada.pk and audit.metadata["data_request_id"] == "9999"
    export = customer_data_export_read(location=audit.metadata["location"])
    raw = (Path(settings.MEDIA_ROOT) / audit.metadata["location"]).read_bytes()
    assert b"ada@example.com" not in raw  # encrypted at rest
    assert export["customer"]["fields"]["email"] == "ada@example.com"
    related = export["related"]
    assert sorted(o["fields"]["shopify_order_id"] for o in related["core.Order"]) == ["4001", "4002"]
    assert sum(e["fields"]["points"] for e in related["core.PointsTransaction"]) == ada.points_balance
    assert [r["fields"]["code"] for r in related["core.ReferralLink"]] == ["ADA-REF-1"]
    assert {d["topic"] for d in export["webhook_deliveries"]} >= {"customers/create", "orders/paid"}
    assert any(a["fields"]["action"] == "points_earn" for a in export["audit_logs"])
    assert foreign.pk not in json.dumps(export) and foreign.email not in json.dumps(export)


def test_customer_redact_erases_personal_data_everywhere_and_keeps_the_ledger(client, merchant, other_merchant):
    ada = _seed_customer(client, merchant)
    deliver(
        client,
        merchant,
        "customers/data_request",
        {"customer": {"id": 7001, "email": "ada@example.com"}, "data_request": {"id": 1}},
        webhook_id="dr",
    )
    export_location = AuditLog.objects.get(action="customer_data_exported").metadata["location"]
    ledger_before = (PointsTransaction.objects.filter(customer=ada).count(), ada.points_balance, ada.lifetime_points)
    foreign = other_merchant["customers"][0]
    redis = get_redis()
    stream_append(merchant_id=merchant.pk, key=f"points:{ada.pk}", data={"points_balance": ada.points_balance})
    stream_append(merchant_id=merchant.pk, key=f"tiers:{ada.pk}", data={"vip_tier_id": None})
    stream_append(merchant_id=merchant.pk, key=f"badges:{ada.pk}", data={"badge": "first"})
    redis.zadd(f"{merchant.pk}:leaderboard:points", {ada.pk: 280, "cus_someone_else": 10})
    stream_append(merchant_id=foreign.merchant_id, key=f"points:{foreign.pk}", data={"points_balance": 0})
    cache.set(f"customer-summary:{ada.pk}", {"email": "ada@example.com"})
    cache.set(f"customer-summary:{foreign.pk}", {"email": foreign.email})
    assert _tables_containing("ada@example.com")

    request = {
        "shop_id": 1,
        "shop_domain": merchant.shop_domain,
        "customer": {"id": 7001, "email": "ada@example.com", "phone": "+15550001"},
        "orders_to_redact": [4001, 4002],
    }
    delivery = deliver(client, merchant, "customers/redact", request, webhook_id="redact")

    assert delivery.status == WebhookStatus.PROCESSED
    for text in PERSONAL:
        assert _tables_containing(text) == [], text
    ada.refresh_from_db()
    assert (ada.email, ada.first_name, ada.last_name, ada.shopify_customer_id) == ("", "", "", f"redacted-{ada.pk}")
    assert ada.redacted_at is not None
    assert (
        PointsTransaction.objects.filter(customer=ada).count(),
        ada.points_balance,
        ada.lifetime_points,
    ) == ledger_before
    assert ada.points_balance == ledger_balance(merchant=merchant, customer=ada)
    assert not ReferralLink.objects.get(customer=ada).is_active
    assert not [k for k in redis.scan_iter(match=f"{merchant.pk}:*") if ada.pk in k]
    assert redis.zrange(f"{merchant.pk}:leaderboard:points", 0, -1) == ["cus_someone_else"]
    assert cache.get(f"customer-summary:{ada.pk}") is None
    from django.core.files.storage import default_storage

    assert not default_storage.exists(export_location)
    # The other shop is untouched.
    foreign.refresh_from_db()
    assert foreign.email and foreign.first_name and foreign.redacted_at is None
    assert redis.exists(f"{foreign.merchant_id}:points:{foreign.pk}")
    assert cache.get(f"customer-summary:{foreign.pk}") == {"email": foreign.email}
    # A late customers/update for the erased customer does not bring the data back.
    deliver(
        client,
        merchant,
        "customers/update",
        {"id": 7001, "email": "ada@example.com", "first_name": "Ada"},
        webhook_id="late",
    )
    assert Customer.objects.filter(merchant=merchant, email="ada@example.com", redacted_at__isnull=True).count() == 1
    assert AuditLog.objects.filter(merchant=merchant, action="customer_redacted", target_id=ada.pk).exists()


def _tenant_counts(merchant):
    counts = {}
    with connection.cursor() as cursor:
        for model in _tenant_models():
            table = connection.ops.quote_name(model._meta.db_table)
            column = connection.ops.quote_name(merchant_column(model))
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", [merchant.pk])  # noqa: S608
            counts[model._meta.db_table] = cursor.fetchone()[0]
    return counts


def test_shop_redact_erases_every_row_and_key_of_the_shop_and_nothing_of_another(client, merchant, other_merchant):
    _seed_customer(client, merchant)
    other = other_merchant["merchant"]
    zed = order_payload(4001, customer_id=8001, email="zed@example.com")
    zed["customer"].update(first_name="Zed", last_name="Zephyr", phone="+15559999")
    zed["billing_address"] = {"first_name": "Zed", "address1": "1 Other Street"}
    deliver(client, other, "orders/paid", zed, webhook_id="o1")
    other_before = _tenant_counts(other)
    redis = get_redis()
    stream_append(merchant_id=merchant.pk, key="leaderboard", data={"top": 1})
    stream_append(merchant_id=other.pk, key="leaderboard", data={"top": 1})
    Merchant.objects.filter(pk=merchant.pk).update(is_installed=False)
    merchant.refresh_from_db()
    assert sum(_tenant_counts(merchant).values()) > 10

    delivery = deliver(
        client, merchant, "shop/redact", {"shop_id": 1, "shop_domain": merchant.shop_domain}, webhook_id="shop-redact"
    )

    assert delivery.status == WebhookStatus.PROCESSED
    remaining = {table: count for table, count in _tenant_counts(merchant).items() if count}
    assert remaining == {"webhook_inbox": 1, "audit_logs": 1}
    assert WebhookDelivery.objects.get(merchant=merchant).pk == delivery.pk
    tombstone = AuditLog.objects.get(merchant=merchant)
    assert tombstone.action == "shop_redacted" and tombstone.metadata["deleted_rows"]["points_transactions"] > 0
    merchant.refresh_from_db()
    assert merchant.name == "" and merchant.shop_domain == "alpha-pets.myshopify.com"
    for text in PERSONAL:
        assert _tables_containing(text) == [], text
    assert not list(redis.scan_iter(match=f"{merchant.pk}:*"))
    # Another shop: every row and key still there.
    assert _tenant_counts(other) == other_before
    assert redis.exists(f"{other.pk}:leaderboard")
    assert ShopifyRefund.objects.filter(merchant=other).count() == 0 and _tables_containing("zed@example.com")


def test_shop_redact_is_refused_while_the_shop_has_the_app_installed(client, merchant):
    _seed_customer(client, merchant)
    before = _tenant_counts(merchant)

    delivery = deliver(
        client, merchant, "shop/redact", {"shop_id": 1, "shop_domain": merchant.shop_domain}, webhook_id="x"
    )

    assert delivery.status == WebhookStatus.SKIPPED
    after = _tenant_counts(merchant)
    assert after["users"] == before["users"] and after["points_transactions"] == before["points_transactions"]
    assert AuditLog.objects.filter(merchant=merchant, action="shop_redact_skipped").exists()


def test_redacting_an_unknown_customer_scrubs_mentions_and_records_it(client, merchant):
    deliver(
        client,
        merchant,
        "orders/create",
        order_payload(4100, customer_id=None, email="ghost@example.com", financial_status="pending"),
        webhook_id="guest",
    )

    deliver(
        client,
        merchant,
        "customers/redact",
        {"customer": {"id": 7999, "email": "ghost@example.com"}, "orders_to_redact": [4100]},
        webhook_id="r",
    )

    assert _tables_containing("ghost@example.com") == []
    assert AuditLog.objects.filter(
        merchant=merchant, action="customer_redacted", metadata__customer_found=False
    ).exists()
