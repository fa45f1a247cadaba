"""React to ledger changes: the customers' passes are marked changed in the writing transaction
(one UPDATE for the batch) and pushed by a Celery task after commit — never an external call
inside the transaction."""

from django.db import transaction
from django.dispatch import receiver

from apps.core.queueing import enqueue_unless_broker_down
from apps.core.signals import ledger_entries_written

from .services import wallet_passes_mark_changed


@receiver(ledger_entries_written, dispatch_uid="wallet_passes_on_ledger")
def wallet_passes_on_ledger(sender, *, merchant, entries, **kwargs):
    pass_ids = wallet_passes_mark_changed(merchant=merchant, customer_ids={entry.customer_id for entry in entries})
    if pass_ids:
        from .tasks import wallet_passes_push_task

        merchant_id = merchant.pk
        transaction.on_commit(
            lambda: enqueue_unless_broker_down(
                wallet_passes_push_task, kwargs={"merchant_id": merchant_id, "pass_ids": pass_ids}
            )
        )
