"""`referral_link_changed` (apps/core/signals.py): sent inside the transaction that creates a
customer's active referral link, never when the existing link is returned."""

from django.db import transaction

from apps.core.models import ReferralLink
from apps.core.services import referral_link_get_or_create
from apps.core.signals import referral_link_changed


def test_a_new_link_is_announced_once_inside_the_transaction(merchant, customer):
    calls = []

    def on_change(sender, *, merchant, customer_ids, **kwargs):
        calls.append((merchant.pk, list(customer_ids), transaction.get_connection().in_atomic_block))

    referral_link_changed.connect(on_change, weak=False)
    try:
        first = referral_link_get_or_create(merchant=merchant, customer=customer)
        again = referral_link_get_or_create(merchant=merchant, customer=customer)
        ReferralLink.objects.filter(pk=first.pk).update(is_active=False)
        renewed = referral_link_get_or_create(merchant=merchant, customer=customer)
    finally:
        referral_link_changed.disconnect(on_change)

    assert again.pk == first.pk and renewed.code != first.code
    assert calls == [(merchant.pk, [customer.pk], True), (merchant.pk, [customer.pk], True)]
