"""React to loyalty changes: the customers' passes are marked changed in the writing transaction
(one UPDATE for the batch) and pushed by a Celery task after commit — never an external call
inside the transaction. Balance and tier changes arrive as `ledger_entries_written`, a new
referral code (the pass's QR) as `referral_link_changed`."""

from django.db import transaction
from django.dispatch import receiver

from apps.core.queueing import enqueue_unless_broker_down
from apps.core.signals import ledger_entries_written, referral_link_changed

from .services import wallet_passes_mark_changed


def _passes_changed(*, merchant, customer_ids) -> None:
    pass_ids = wallet_passes_mark_changed(merchant=merchant, customer_ids=customer_ids)
    if pass_ids:
        from .tasks import wallet_passes_push_task

        merchant_id = merchant.pk
        transaction.on_commit(
            lambda: enqueue_unless_broker_down(
                wallet_passes_push_task, kwargs={"merchant_id": merchant_id, "pass_ids": pass_ids}
            )
        )


@receiver(ledger_entries_written, dispatch_uid="wallet_passes_on_ledger")
def wallet_passes_on_ledger(sender, *, merchant, entries, **kwargs):
    _passes_changed(merchant=merchant, customer_ids={entry.customer_id for entry in entries})


@receiver(referral_link_changed, dispatch_uid="wallet_passes_on_referral_link")
def wallet_passes_on_referral_link(sender, *, merchant, customer_ids, **kwargs):
    _passes_changed(merchant=merchant, customer_ids=set(customer_ids))
