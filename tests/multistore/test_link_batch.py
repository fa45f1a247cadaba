"""Batched linking (`_link_many`, ~500 emails a transaction) gives exactly what linking email by
email (`_link`) gives: the same accounts, entries, balances, tiers, audit rows, streams and copies."""

import json

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from apps.core.models import AuditLog, Customer, PointsTransaction
from apps.core.redis import get_redis
from apps.core.services import ledger_balance, points_earn
from apps.core.streams import stream_name
from apps.multistore import services
from apps.multistore.models import SharedAccount, SharedLedgerEntry
from apps.multistore.services import email_digest, ledger_totals, shared_customers_link
from apps.shopify.metafields import CUSTOMER_KEYS, customer_gid
from tests.factories import CustomerFactory, VipTierFactory
from tests.fakes.shopify_ops_metafields import metafield_get
from tests.shopify_helpers import shopify_connect

# Per email: the starting balance in each store (us, eu, jp); None = no customer in that store.
SHAPES = [(50, 0, 120), (0, 0, None), (200, None, 150), (10, 20, 30), (0, 400, 0)]


def _group_of_customers(stores, prefix):
    """One customer per store and email with its starting balance earned through the ledger."""
    made = {}
    for n, shape in enumerate(SHAPES):
        for index, ((store, _owner), points) in enumerate(zip(stores, shape, strict=True)):
            if points is None:
                continue
            customer = CustomerFactory(
                merchant=store, email=f"{prefix}{n}@example.com", first_name="Ana", last_name=str(n)
            )
            if points:
                points_earn(merchant=store, customer=customer, points=points, idempotency_key=f"seed:{prefix}{n}")
            made[(n, index)] = customer.pk
    return made


def _outcome(made, fake, prefix):
    """Everything linking wrote, with ids replaced by (email number, store index) labels."""
    label = {f"seed:{prefix}": "seed:"}
    for (n, index), pk in made.items():
        customer = Customer.objects.get(pk=pk)
        label[customer.shared_customer_id] = f"account{n}"
        label[pk] = f"customer{n}.{index}"

    def named(value):
        text = json.dumps(value, sort_keys=True, default=str)
        for raw, name in label.items():
            text = text.replace(raw, name)
        return json.loads(text)

    result = {"customers": {}, "entries": {}, "accounts": {}, "shared": {}, "audit": {}, "streams": {}, "copies": {}}
    redis = get_redis()
    for _key, pk in sorted(made.items()):
        customer = Customer.objects.select_related("merchant").get(pk=pk)
        key = label[pk]
        result["customers"][key] = named(
            [
                customer.points_balance,
                customer.lifetime_points,
                customer.vip_tier_id,
                customer.lifecycle_stage,
                customer.shared_customer_id,
            ]
        )
        result["entries"][key] = named(
            list(
                PointsTransaction.objects.filter(customer_id=pk)
                .order_by("created_at", "pk")
                .values_list("kind", "points", "balance_after", "reason", "idempotency_key", "metadata")
            )
        )
        result["audit"][key] = named(
            list(AuditLog.objects.filter(target_id=pk, action="multi_store_sync").values_list("metadata", flat=True))
        )
        result["streams"][key] = named(
            [
                json.loads(fields[b"data"] if b"data" in fields else fields["data"])
                for _id, fields in redis.xrange(stream_name(customer.merchant_id, f"points:{pk}"))
            ]
        )
        owner = customer_gid(customer.shopify_customer_id)
        result["copies"][key] = named(
            {
                k: (metafield_get(fake, customer.merchant.shop_domain, owner, k) or {}).get("value")
                for k in CUSTOMER_KEYS
            }
        )
    for account in SharedAccount.objects.filter(pk__in=[k for k, v in label.items() if v.startswith("account")]):
        name = label[account.pk]
        result["accounts"][name] = [account.points_balance, account.lifetime_points, account.version]
        result["shared"][name] = named(
            list(
                SharedLedgerEntry.objects.filter(account=account)
                .order_by("balance_after", "pk")
                .values_list("kind", "source_merchant_id", "source_customer_id", "points", "balance_after")
            )
        )
    return result


@pytest.fixture
def tiered(group, stores, fake_shopify):
    for store, _owner in stores:
        shopify_connect(fake_shopify, store)
        VipTierFactory(merchant=store, min_lifetime_points=100)
        VipTierFactory(merchant=store, min_lifetime_points=300)
    return group


def _sync_copies(stores, made):
    for index, (store, _owner) in enumerate(stores):
        services._copy_sync(store, [pk for (_n, i), pk in made.items() if i == index])


def test_batch_link_gives_exactly_what_linking_one_by_one_gives(
    tiered, stores, fake_shopify, django_capture_on_commit_callbacks
):
    group = tiered
    get_redis().flushdb()
    batched = _group_of_customers(stores, "batch")

    with CaptureQueriesContext(connection) as batch_queries, django_capture_on_commit_callbacks(execute=True):
        report = shared_customers_link(group=group, batch=2)  # three transactions of at most 2 emails
    assert (report.linked, report.accounts_created, report.reviews) == (13, 5, 0)

    # The same customers in a second set, linked email by email through the per-email path.
    per_email = _group_of_customers(stores, "single")
    with CaptureQueriesContext(connection) as single_queries, django_capture_on_commit_callbacks(execute=True):
        for n in range(len(SHAPES)):
            ids = [pk for (m, _i), pk in per_email.items() if m == n]
            assert services._link(group=group, digest=email_digest(f"single{n}@example.com"), customer_ids=ids)
    # The batch path ran: its set-based writes take fewer statements, discovery included, than
    # the per-email path alone (42 against 82 here).
    assert len(batch_queries) < len(single_queries), (len(batch_queries), len(single_queries))
    _sync_copies(stores, batched)
    _sync_copies(stores, per_email)

    assert _outcome(batched, fake_shopify, "batch") == _outcome(per_email, fake_shopify, "single")
    # Sanity of the compared outcome: shared balance = sum of each email's starting balances.
    outcome = _outcome(batched, fake_shopify, "batch")
    assert [outcome["accounts"][f"account{n}"][0] for n in range(len(SHAPES))] == [170, 0, 350, 60, 400]
    assert outcome["copies"]["customer2.2"]["points_balance"] == "350"
    assert outcome["streams"]["customer2.2"][-1] == {
        "customer_id": "customer2.2",
        "points_balance": 350,
        "shared_customer_id": "account2",
    }
    assert outcome["audit"]["customer0.1"] == [
        {"event": "customer_linked", "shared_customer_id": "account0", "points_balance": 170}
    ]

    # The ledger invariant: every store's balance = sum of its entries; shared = sum of shared entries.
    for made in (batched, per_email):
        for (_n, index), pk in made.items():
            customer = Customer.objects.get(pk=pk)
            assert customer.points_balance == ledger_balance(merchant=stores[index][0], customer=customer)
    totals = ledger_totals(group_id=group.pk)
    for account in SharedAccount.objects.filter(group=group):
        assert account.points_balance == totals.get(account.pk, 0)
        linked = Customer.objects.filter(shared_customer_id=account.pk).aggregate(s=Sum("points_balance"))["s"]
        assert linked == account.points_balance * Customer.objects.filter(shared_customer_id=account.pk).count()


def test_relinking_skips_linked_customers_and_a_customer_linked_meanwhile_falls_back(tiered, stores):
    group = tiered
    _group_of_customers(stores, "again")
    shared_customers_link(group=group, batch=2)
    entries, accounts = PointsTransaction.objects.count(), SharedAccount.objects.count()
    # A retried link task: nothing linked twice, nothing written.
    report = shared_customers_link(group=group)
    assert (report.linked, report.accounts_created) == (0, 0)
    assert (PointsTransaction.objects.count(), SharedAccount.objects.count()) == (entries, accounts)

    # An email whose customer was linked after it was read is left to the per-email path,
    # and the batch leaves no account behind for it.
    (us, _), (eu, _), _jp = stores
    a = CustomerFactory(merchant=us, email="late@example.com", first_name="Lea", last_name="Late")
    b = CustomerFactory(merchant=eu, email="late@example.com", first_name="Lea", last_name="Late")
    c = CustomerFactory(merchant=us, email="fresh@example.com", first_name="Fay", last_name="Fresh")
    d = CustomerFactory(merchant=eu, email="fresh@example.com", first_name="Fay", last_name="Fresh")
    elsewhere = SharedAccount.objects.create(group=group)
    Customer.objects.filter(pk=a.pk).update(shared_customer_id=elsewhere.pk)
    deferred = services._link_many(
        group=group,
        items={email_digest("late@example.com"): [a.pk, b.pk], email_digest("fresh@example.com"): [c.pk, d.pk]},
    )
    assert deferred == [email_digest("late@example.com")]
    assert not SharedAccount.objects.filter(email_digest=email_digest("late@example.com")).exists()
    fresh = SharedAccount.objects.get(email_digest=email_digest("fresh@example.com"))
    assert set(Customer.objects.filter(shared_customer_id=fresh.pk).values_list("pk", flat=True)) == {c.pk, d.pk}
