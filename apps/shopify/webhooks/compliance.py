"""The mandatory compliance webhooks, for real (RELIABILITY A8).

- `customers/data_request` → `customer_data_export`: everything LoyalNest holds on the customer
  (their row, every row of any model that points at them — orders, ledger, referral links,
  metafield copies and whatever the feature apps add —, audit rows about them and inbox
  deliveries that mention them) as one JSON document, encrypted with the app's AES-256-GCM
  keys and stored under MEDIA_ROOT/compliance/<merchant>/; the audit row
  `customer_data_exported` records where, so staff can hand it to the merchant.
- `customers/redact` → `customer_redact`: personal data erased from every table, stream and
  cache key; the customer row stays, anonymised, so the ledger (which holds no personal data)
  keeps its totals and the balance invariant holds.
- `shop/redact` → `shop_redact`: every tenant row of the shop deleted (ledger included), its
  Redis keys and export files too; the merchant row stays as a tombstone (shop domain, no
  personal data) with one audit row `shop_redacted`. Other shops are untouched.

Feature apps declare what in their models is personal, without this module importing them:
a model with a foreign key to Customer may set `PERSONAL_DATA_FIELDS = ("field", …)` (blanked
on redaction) or `ERASE_WITH_CUSTOMER = True` (its rows of that customer are deleted).
"""

import json
import logging

from django.apps import apps
from django.core import serializers
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from apps.backups.erasures import erasure_logged
from apps.core.audit import audit_record
from apps.core.crypto import decrypt, encrypt
from apps.core.models import CUSTOMER_CONTACT_FIELDS, AuditLog, Customer, Merchant, ReferralLink
from apps.core.redis import get_redis
from apps.core.streams import stream_delete

from ..models import WebhookDelivery
from .payloads import PayloadInvalid, optional_shopify_id, scrub_personal_data

logger = logging.getLogger(__name__)

EXPORT_DIRECTORY = "compliance"
# Streams the core keeps per customer (apps.core.services.ledger); feature streams that name
# the customer id are found by pattern as well.
CUSTOMER_STREAMS = ("points:{id}", "tiers:{id}")


# --- helpers ------------------------------------------------------------------------------------
def _customer_related_fields():
    """(model, field) for every concrete foreign key to Customer in the project."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and field.related_model is Customer
    ]


def _tenant_models():
    """Every model whose rows belong to one merchant (a `merchant` foreign key)."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        field = next((f for f in model._meta.concrete_fields if f.name == "merchant"), None)
        if isinstance(field, models.ForeignKey) and field.related_model is Merchant:
            found.append(model)
    return found


def merchant_column(model) -> str:
    """The column of a tenant model's `merchant` key (the seeds name some, e.g. `advocate_merchant_id`)."""
    return model._meta.get_field("merchant").column


def _deliveries_mentioning(*, merchant, shopify_customer_id: str | None, email: str):
    condition = Q()
    if shopify_customer_id:
        number = int(shopify_customer_id)
        condition |= Q(body__customer__id=number) | Q(body__customer__id=shopify_customer_id)
        condition |= Q(topic__startswith="customers/", body__id=number)
    if email:
        condition |= Q(body__icontains=email)
    if not condition:
        return WebhookDelivery.objects.none()
    return WebhookDelivery.objects.filter(condition, merchant=merchant)


def _serialize(queryset) -> list[dict]:
    return serializers.serialize("python", queryset)


def _redis_keys_matching(pattern: str) -> list[str]:
    return list(get_redis().scan_iter(match=pattern, count=1000))


def _customer_from_payload(*, merchant, payload: dict) -> tuple[str | None, Customer | None, str]:
    if not isinstance(payload, dict):
        raise PayloadInvalid("payload is not an object")
    data = payload.get("customer")
    if not isinstance(data, dict):
        raise PayloadInvalid("customer is missing")
    shopify_customer_id = optional_shopify_id(data.get("id"), field="customer.id")
    email = str(data.get("email") or "").strip()
    customer = None
    if shopify_customer_id:
        customer = Customer.objects.filter(merchant=merchant, shopify_customer_id=shopify_customer_id).first()
    if customer is None and "@" in email:
        customer = Customer.objects.filter(merchant=merchant, email__iexact=email).first()
    return shopify_customer_id, customer, email


# --- customers/data_request -------------------------------------------------------------------
@transaction.atomic
def customer_data_export(*, merchant, payload: dict) -> str:
    """Build the export of everything held on the customer, store it encrypted, audit where."""
    shopify_customer_id, customer, email = _customer_from_payload(merchant=merchant, payload=payload)
    request_id = optional_shopify_id((payload.get("data_request") or {}).get("id"), field="data_request.id")
    document = {
        "shop_domain": merchant.shop_domain,
        "data_request_id": request_id,
        "shopify_customer_id": shopify_customer_id,
        "generated_at": timezone.now(),
        "customer": None,
        "related": {},
        "audit_logs": [],
        "webhook_deliveries": [],
    }
    if customer is not None:
        document["customer"] = _serialize(Customer.objects.filter(pk=customer.pk))[0]
        for model, field in _customer_related_fields():
            rows = model._default_manager.filter(**{field.name: customer})
            if "merchant" in {f.name for f in model._meta.concrete_fields}:
                rows = rows.filter(merchant=merchant)
            serialized = _serialize(rows.order_by("pk"))
            if serialized:
                document["related"].setdefault(model._meta.label, []).extend(serialized)
        audit_rows = AuditLog.objects.filter(merchant=merchant).filter(
            Q(target_type=Customer._meta.db_table, target_id=customer.pk) | Q(metadata__customer_id=customer.pk)
        )
        document["audit_logs"] = _serialize(audit_rows.order_by("created_at", "id"))
    deliveries = _deliveries_mentioning(
        merchant=merchant, shopify_customer_id=shopify_customer_id, email=customer.email if customer else email
    )
    document["webhook_deliveries"] = [
        {"topic": d.topic, "triggered_at": d.triggered_at, "body": d.body}
        for d in deliveries.exclude(topic__in=("customers/data_request", "customers/redact")).order_by("received_at")
    ]
    name = f"{EXPORT_DIRECTORY}/{merchant.pk}/data-request-{request_id or 'none'}-{shopify_customer_id or 'unknown'}.json.enc"
    content = encrypt(json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False))
    if default_storage.exists(name):
        default_storage.delete(name)
    location = default_storage.save(name, ContentFile(content.encode()))
    audit_record(
        merchant=merchant,
        action="customer_data_exported",
        target=customer,
        metadata={
            "location": location,
            "data_request_id": request_id,
            "customer_id": customer.pk if customer else None,
            "counts": {label: len(rows) for label, rows in document["related"].items()},
        },
    )
    return location


def customer_data_export_read(*, location: str) -> dict:
    """Decrypt a stored export (for staff who deliver it to the merchant)."""
    with default_storage.open(location, "rb") as handle:
        return json.loads(decrypt(handle.read().decode()))


# --- customers/redact -------------------------------------------------------------------------
def _erase_customer_redis(*, merchant, customer: Customer) -> None:
    """Delete the customer's streams and cache keys and take them off leaderboards (sorted sets).
    Raises when Redis is down: the delivery is retried, erasure is never skipped silently."""
    stream_delete(merchant_id=merchant.pk, keys=[key.format(id=customer.pk) for key in CUSTOMER_STREAMS])
    client = get_redis()
    named = _redis_keys_matching(f"{merchant.pk}:*{customer.pk}*")
    if named:
        client.delete(*named)
    for key in _redis_keys_matching(f"{merchant.pk}:*"):
        if client.type(key) == "zset":
            client.zrem(key, customer.pk)
    cache.delete_pattern(f"*{customer.pk}*")


@transaction.atomic
def customer_redact(*, merchant, payload: dict) -> Customer | None:
    """Erase the customer's personal data everywhere; keep their anonymised ledger and totals."""
    shopify_customer_id, customer, email = _customer_from_payload(merchant=merchant, payload=payload)
    known_email = customer.email if customer is not None and customer.email else email
    for delivery in _deliveries_mentioning(
        merchant=merchant, shopify_customer_id=shopify_customer_id, email=known_email
    ):
        delivery.body = scrub_personal_data(delivery.body)
        delivery.save(update_fields=["body"])
    if customer is None:
        audit_record(merchant=merchant, action="customer_redacted", metadata={"customer_found": False})
        return None

    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if known_email:
        for row in AuditLog.objects.filter(merchant=merchant, metadata__icontains=known_email):
            AuditLog.objects.filter(pk=row.pk).update(metadata={"redacted": True})
    for model, field in _customer_related_fields():
        rows = model._default_manager.filter(**{field.name: customer})
        if getattr(model, "ERASE_WITH_CUSTOMER", False):
            rows.delete()
            continue
        personal = getattr(model, "PERSONAL_DATA_FIELDS", ())
        if personal:
            blank = {}
            for name in personal:
                model_field = model._meta.get_field(name)
                blank[name] = (
                    None if model_field.null else ("" if not model_field.has_default() else model_field.get_default())
                )
            rows.update(**blank)
    ReferralLink.objects.filter(merchant=merchant, customer=customer, is_active=True).update(is_active=False)
    for entry in AuditLog.objects.filter(
        merchant=merchant, action="customer_data_exported", target_type=Customer._meta.db_table, target_id=customer.pk
    ):
        location = (entry.metadata or {}).get("location")
        if location and default_storage.exists(location):
            default_storage.delete(location)

    customer.email = ""
    customer.first_name = ""
    customer.last_name = ""
    customer.phone = ""
    customer.email_marketing_consent = "redacted"
    customer.sms_marketing_consent = "redacted"
    customer.shopify_customer_id = f"redacted-{customer.pk}"
    customer.shared_customer_id = None
    customer.redacted_at = timezone.now()
    customer.save(update_fields=[*CUSTOMER_CONTACT_FIELDS, "shopify_customer_id", "shared_customer_id", "redacted_at"])
    _erase_customer_redis(merchant=merchant, customer=customer)
    # Ids only, re-applied after any restore of an older backup (RELIABILITY F1).
    erasure_logged(
        kind="customer", merchant_id=merchant.pk, customer_id=customer.pk, shopify_customer_id=shopify_customer_id
    )
    audit_record(
        merchant=merchant,
        action="customer_redacted",
        target=customer,
        metadata={"customer_found": True, "orders_to_redact": len(payload.get("orders_to_redact") or [])},
    )
    return customer


# --- shop/redact -----------------------------------------------------------------------------
def _delete_shop_redis(*, merchant) -> int:
    client = get_redis()
    keys = [*_redis_keys_matching(f"{merchant.pk}:*"), f"shopify:cost:{merchant.shop_domain}"]
    deleted = client.delete(*keys) if keys else 0
    cache.delete_pattern(f"*{merchant.pk}*")
    return deleted


def _delete_export_files(*, merchant) -> None:
    directory = f"{EXPORT_DIRECTORY}/{merchant.pk}"
    try:
        _dirs, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{directory}/{name}")


@transaction.atomic
def shop_redact(*, merchant, delivery: WebhookDelivery | None = None) -> dict | None:
    """Delete every tenant row of the shop (ledger included) and its Redis keys; keep the
    merchant row as a tombstone. Refused (None) while the shop has the app installed again."""
    merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
    if merchant.is_installed:
        audit_record(merchant=merchant, action="shop_redact_skipped", target=merchant, metadata={"reason": "installed"})
        return None
    _delete_shop_redis(merchant=merchant)
    deleted: dict[str, int] = {}
    tenant_models = _tenant_models()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Foreign keys are DEFERRABLE INITIALLY DEFERRED (Django on PostgreSQL): rows of the
        # shop that point at each other go in any order and are checked at commit.
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        tenant_tables = {model._meta.db_table for model in tenant_models}
        # Rows without a merchant column that hang off tenant rows (many-to-many tables…).
        for model in apps.get_models(include_auto_created=True):
            if model._meta.db_table in tenant_tables:
                continue
            for field in model._meta.concrete_fields:
                parent = field.related_model if isinstance(field, models.ForeignKey) else None
                if parent is None or parent._meta.db_table not in tenant_tables:
                    continue
                cursor.execute(
                    f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote(field.column)} IN "  # noqa: S608
                    f"(SELECT {quote(parent._meta.pk.column)} FROM {quote(parent._meta.db_table)} "
                    f"WHERE {quote(merchant_column(parent))} = %s)",
                    [merchant.pk],
                )
                deleted[model._meta.db_table] = deleted.get(model._meta.db_table, 0) + cursor.rowcount
        for model in tenant_models:
            table = model._meta.db_table
            column = quote(merchant_column(model))
            if model is WebhookDelivery and delivery is not None:
                cursor.execute(
                    f"DELETE FROM {quote(table)} WHERE {column} = %s AND id <> %s",  # noqa: S608
                    [merchant.pk, delivery.pk],
                )
            else:
                cursor.execute(f"DELETE FROM {quote(table)} WHERE {column} = %s", [merchant.pk])  # noqa: S608
            deleted[table] = deleted.get(table, 0) + cursor.rowcount
    transaction.on_commit(lambda: _delete_export_files(merchant=merchant))
    merchant.name = ""
    merchant.shopify_plan = ""
    merchant.save(update_fields=["name", "shopify_plan", "updated_at"])
    erasure_logged(kind="shop", merchant_id=merchant.pk)
    audit_record(
        merchant=merchant,
        action="shop_redacted",
        target=merchant,
        metadata={"deleted_rows": {table: count for table, count in sorted(deleted.items()) if count}},
    )
    return deleted


# --- after a restore (apps.backups, RELIABILITY F1) ---------------------------------------
def erasure_replay(record: dict) -> None:
    """Re-apply one logged erasure to a database restored from a backup older than it."""
    merchant = Merchant.objects.filter(pk=record["merchant_ref"]).first()
    if merchant is None:
        return
    if record["kind"] == "shop":
        if merchant.is_installed:  # installed when the backup was taken; it was uninstalled since
            Merchant.objects.filter(pk=merchant.pk).update(is_installed=False)
            merchant.refresh_from_db()
        shop_redact(merchant=merchant)
        return
    customer = Customer.objects.filter(merchant=merchant, pk=record["customer_ref"]).first()
    if customer is None or customer.redacted_at is not None:
        return
    customer_redact(merchant=merchant, payload={"customer": {"id": customer.shopify_customer_id}})
