"""Signals sent inside the writing transaction, so feature apps react to loyalty changes exactly
once with the change itself (gamification awards badges and streaks, team scores grow, a store
group's shared ledger follows…).

A receiver runs in the sender's transaction: what it writes commits or rolls back with the
change, and an exception it raises rolls the change back (a webhook delivery is then retried or
failed with the reason). So receivers must be quick and set-based — they get whole batches —
and must not call external services (queue a task with `transaction.on_commit` for that).

    from apps.core.signals import ledger_entries_written

    @receiver(ledger_entries_written)
    def _team_scores(sender, *, merchant, entries, **kwargs): ...

Bulk loads (`seed_demo`, `import_orders` history) do not send them.
"""

from django.dispatch import Signal

# kwargs: merchant, entries — the `PointsTransaction` rows just appended (one or many).
ledger_entries_written = Signal()

# kwargs: merchant, customer_ids — sent just before the ledger locks these customers' rows
# (`SELECT … FOR UPDATE`), inside the writing transaction. A receiver may lock rows that must
# come first in the global lock order (a store group's shared accounts); it must not write.
ledger_customers_locking = Signal()

# kwargs: merchant, customer_ids — these customers' active referral link changed: a link with a
# new code was created (the first one, or a new one after the old link was deactivated). Sent
# inside the creating transaction. Wallet passes carry the link in their QR code and are updated.
referral_link_changed = Signal()

# kwargs: merchant, orders — the stored `Order` rows after a batch of Shopify order payloads
# (webhooks or reconciliation) was applied, each order at most once per send.
orders_synced = Signal()
