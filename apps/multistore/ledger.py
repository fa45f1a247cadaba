"""One ledger per shared customer (RELIABILITY C6), on top of the stores' own ledgers.

Lock order, everywhere: shared accounts (by id), then store customers (by id). The core sends
`ledger_customers_locking` before it locks a customer, so a write in any member store first
takes the shared account's lock: writes to one shared customer in different stores run one
after the other, and the balance check of the writing store sees the shared balance.

After a store entry is appended (`ledger_entries_written`, same transaction) the shared account
moves by the same points, a `SharedLedgerEntry` records it with its source store, and every
other linked store customer gets a mirror entry (kind `adjust`, idempotency key
`multistore:<source entry id>`, metadata naming the source store and entry). So each store's
ledger stays append-only with balance = sum of its entries, and every linked customer's cached
balance equals the shared balance. Mirrors are written directly (no signal): other feature
apps see each movement once, in the store where it happened.
"""

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from apps.core.errors import InsufficientPoints
from apps.core.models import Customer, LifecycleStage, PointsTransaction, TransactionKind, VipTier
from apps.core.signals import ledger_customers_locking, ledger_entries_written
from apps.core.streams import stream_append_many_on_commit
from apps.core.tenancy import scopes_disabled

from .models import SharedAccount, SharedEntryKind, SharedLedgerEntry

MIRROR_KEY = "multistore_mirror_of"
LINK_KEY = "multistore_link"


def lock_accounts(account_ids) -> dict[str, SharedAccount]:
    """Lock shared accounts in the global order (by id)."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    return {a.pk: a for a in SharedAccount.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def lock_linked_customers(account_ids) -> list[Customer]:
    """Lock every store customer linked to these accounts (by id, after the accounts)."""
    with scopes_disabled():
        return list(
            Customer.objects.select_for_update()
            .filter(shared_customer_id__in=list(account_ids))
            .select_related("merchant")
            .order_by("pk")
        )


def _shared_ids(merchant, customer_ids) -> dict[str, str]:
    with scopes_disabled():
        return dict(
            Customer.objects.filter(merchant=merchant, pk__in=list(customer_ids), shared_customer_id__isnull=False)
            .exclude(shared_customer_id="")
            .values_list("pk", "shared_customer_id")
        )


@receiver(ledger_customers_locking, dispatch_uid="multistore-lock-shared-accounts")
def _lock_shared_accounts(sender, *, merchant, customer_ids, **kwargs):
    shared = _shared_ids(merchant, customer_ids)
    if shared:
        lock_accounts(shared.values())


def _lifetime_delta(entry: PointsTransaction) -> int:
    if entry.kind == TransactionKind.EARN:
        return entry.points
    if entry.kind == TransactionKind.REVERSE and entry.reverses_id and entry.points < 0:
        # A refunded order takes its points off the lifetime total too (as the core does).
        return entry.points if entry.reverses.kind == TransactionKind.EARN else 0
    return 0


def apply_to_customer(customer: Customer, points: int, lifetime_delta: int, tiers: dict, share_tiers: bool) -> int:
    """Move a locked store customer's cached balance (and shared tier) as a mirror; return the new balance."""
    new_balance = customer.points_balance + points
    if new_balance < 0:
        raise InsufficientPoints()
    customer.points_balance = new_balance
    if share_tiers and lifetime_delta:
        customer.lifetime_points = max(customer.lifetime_points + lifetime_delta, 0)
        merchant_tiers = tiers.get(customer.merchant_id)
        if merchant_tiers is None:
            merchant_tiers = tiers[customer.merchant_id] = list(
                VipTier.objects.filter(merchant_id=customer.merchant_id).order_by("-min_lifetime_points")
            )
        tier = next((t for t in merchant_tiers if t.min_lifetime_points <= customer.lifetime_points), None)
        customer.vip_tier = tier
        if tier is not None and customer.lifecycle_stage != LifecycleStage.CHURNED:
            customer.lifecycle_stage = LifecycleStage.VIP
    return new_balance


def mirror_entry(customer: Customer, *, points: int, balance_after: int, key: str, metadata: dict, reason: str):
    return PointsTransaction(
        merchant_id=customer.merchant_id,
        customer=customer,
        kind=TransactionKind.ADJUST,
        points=points,
        balance_after=balance_after,
        idempotency_key=key,
        reason=reason,
        metadata=metadata,
    )


@receiver(ledger_entries_written, dispatch_uid="multistore-propagate")
def _propagate(sender, *, merchant, entries, **kwargs):
    entries = [e for e in entries if e.points and MIRROR_KEY not in (e.metadata or {})]
    if not entries:
        return
    shared = _shared_ids(merchant, {e.customer_id for e in entries})
    if not shared:
        return
    with scopes_disabled():
        accounts = lock_accounts(shared.values())
        if not accounts:
            return
        linked = [c for c in lock_linked_customers(accounts) if c.merchant_id != merchant.pk]
        groups = {a.group_id for a in accounts.values()}
        from .models import StoreGroup

        sharing = {g.pk: g.sharing for g in StoreGroup.objects.filter(pk__in=groups)}
        now = timezone.now()
        tiers: dict = {}
        shared_entries, mirrors, streams = [], [], {}
        for entry in entries:
            account = accounts.get(shared.get(entry.customer_id))
            if account is None:
                continue
            share_tiers = sharing.get(account.group_id, {}).get("tiers", True)
            lifetime = _lifetime_delta(entry)
            account.points_balance += entry.points
            if account.points_balance < 0:
                raise InsufficientPoints()
            account.lifetime_points = max(account.lifetime_points + lifetime, 0)
            account.version += 1
            account.changed_at = now
            shared_entries.append(
                SharedLedgerEntry(
                    account=account,
                    kind=SharedEntryKind.STORE,
                    source_merchant_id=merchant.pk,
                    source_customer_id=entry.customer_id,
                    source_transaction=entry,
                    points=entry.points,
                    balance_after=account.points_balance,
                )
            )
            for customer in linked:
                if customer.shared_customer_id != account.pk:
                    continue
                balance = apply_to_customer(customer, entry.points, lifetime, tiers, share_tiers)
                mirrors.append(
                    mirror_entry(
                        customer,
                        points=entry.points,
                        balance_after=balance,
                        key=f"multistore:{entry.pk}",
                        metadata={MIRROR_KEY: entry.pk, "source_store": merchant.pk},
                        reason="multi-store",
                    )
                )
                streams.setdefault(customer.merchant_id, {})[customer.pk] = (customer, balance)
        if not shared_entries:
            return
        leaderboard = [
            (a.group_id, e.account_id, e.points)
            for e in shared_entries
            for a in [e.account]
            if e.points > 0 and sharing.get(a.group_id, {}).get("leaderboard")
        ]
        SharedLedgerEntry.objects.bulk_create(shared_entries)
        SharedAccount.objects.bulk_update(
            list(accounts.values()), ["points_balance", "lifetime_points", "version", "changed_at"]
        )
        if mirrors:
            PointsTransaction.objects.bulk_create(mirrors)
            touched = {c.pk: c for c in linked if any(m.customer_id == c.pk for m in mirrors)}
            for customer in touched.values():
                customer.updated_at = now
            Customer.objects.bulk_update(
                list(touched.values()),
                ["points_balance", "lifetime_points", "vip_tier", "lifecycle_stage", "updated_at"],
            )
    for merchant_id, customers in streams.items():
        stream_append_many_on_commit(
            merchant_id=merchant_id,
            entries=[
                (f"points:{cid}", {"customer_id": cid, "points_balance": balance})
                for cid, (_c, balance) in customers.items()
            ],
        )
    _queue_copy_sync(streams)
    if leaderboard:
        transaction.on_commit(lambda: _leaderboard_add(leaderboard))


def _leaderboard_add(scores) -> None:
    """Add earned points to the cycle's sorted set if it is built (else it is rebuilt from SQL)."""
    import redis

    from apps.core.redis import get_redis

    from .selectors import current_cycle, leaderboard_key

    try:
        client = get_redis()
        cycle = current_cycle()
        for group_id, account_id, points in scores:
            key = leaderboard_key(group_id, cycle)
            if client.exists(key):
                client.zincrby(key, points, account_id)
    except redis.RedisError:
        pass  # the next read rebuilds from PostgreSQL


def _queue_copy_sync(streams: dict) -> None:
    """After commit, bring the other stores' metafield copies up to the new shared balance."""
    from django.conf import settings

    if not streams or not getattr(settings, "MULTISTORE_SYNC_ON_CHANGE", False):
        return

    def queue():
        from .tasks import shared_copies_sync_task

        for merchant_id, customers in streams.items():
            shared_copies_sync_task.delay(merchant_id=merchant_id, customer_ids=sorted(customers))

    transaction.on_commit(queue)
