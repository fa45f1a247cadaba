"""Log GDPR erasures (ids only) and re-apply them after a restore (RELIABILITY F1).

The compliance code (apps.shopify) calls `erasure_logged`; the re-application itself is the
compliance code's (`BACKUP_ERASURE_REPLAY`, a dotted path), so this app imports no feature app.
"""

from contextvars import ContextVar

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string
from django_scopes import scopes_disabled

from .models import ErasureRecord

_replaying: ContextVar[bool] = ContextVar("backups_erasure_replaying", default=False)


def erasure_logged(*, kind: str, merchant_id, customer_id=None, shopify_customer_id=None) -> ErasureRecord | None:
    if _replaying.get():  # a replay re-records the original row itself, with its original time
        return None
    return ErasureRecord.objects.create(
        kind=kind,
        merchant_ref=str(merchant_id),
        customer_ref=str(customer_id or ""),
        shopify_customer_ref=str(shopify_customer_id or ""),
        erased_at=timezone.now(),
    )


def erasures_all() -> list[dict]:
    return [record.as_dict() for record in ErasureRecord.objects.all()]


def erasures_replay(records: list[dict]) -> int:
    """Re-apply the erasures (in this process's database) and record the missing log rows."""
    replay = import_string(settings.BACKUP_ERASURE_REPLAY)
    known = {(r["kind"], r["merchant_ref"], r["customer_ref"], r["erased_at"]) for r in erasures_all()}
    applied = 0
    for record in sorted(records, key=lambda r: r["erased_at"]):
        token = _replaying.set(True)
        try:
            with scopes_disabled():
                replay(record)
        finally:
            _replaying.reset(token)
        applied += 1
        key = (record["kind"], record["merchant_ref"], record["customer_ref"], record["erased_at"])
        if key not in known:
            ErasureRecord.objects.create(
                kind=record["kind"],
                merchant_ref=record["merchant_ref"],
                customer_ref=record["customer_ref"],
                shopify_customer_ref=record.get("shopify_customer_ref", ""),
                erased_at=record["erased_at"],
            )
    return applied
