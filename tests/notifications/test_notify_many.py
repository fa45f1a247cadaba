"""`notify_many`: the batch form of `notify` used by batch writers (gamification awards)."""

from apps.core.tenancy import merchant_scope
from apps.notifications.models import Notification
from apps.notifications.services import notify, notify_many
from tests.factories import CustomerFactory


def test_batched_notifications_are_the_rows_notify_writes(merchant, other_merchant):
    ada = CustomerFactory(merchant=merchant, locale="ar")
    bob = CustomerFactory(merchant=merchant, locale="ja")
    fields = ("customer_id", "staff_id", "channel", "provider", "type", "locale", "context", "state")
    with merchant_scope(merchant):
        notify(merchant=merchant, type="badge_earned", idempotency_key="one", customer=ada, context={"badge": "X"})
        notify_many(merchant=merchant, type="badge_earned", items=[(bob, "two", {"badge": "X"})])
        notify_many(merchant=merchant, type="badge_earned", items=[(bob, "two", {"badge": "X"})])  # replay: nothing

    by_notify = Notification.objects.filter(merchant=merchant, customer=ada).order_by("channel")
    by_batch = Notification.objects.filter(merchant=merchant, customer=bob).order_by("channel")
    assert by_batch.count() == by_notify.count() >= 1
    for single, batched in zip(by_notify, by_batch, strict=True):
        assert [getattr(single, f) for f in fields if f not in ("customer_id", "locale")] == [
            getattr(batched, f) for f in fields if f not in ("customer_id", "locale")
        ]
        assert (single.locale, batched.locale) == ("ar", "ja")
        assert single.idempotency_key.replace("one", "two") == batched.idempotency_key
    assert not Notification.objects.filter(merchant=other_merchant["merchant"]).exists()
