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


@pytest.mark.parametrize("batch", [1, 2, 500])  # five transactions, three, one
def test_batch_link_gives_exactly_what_linking_one_by_one_gives(
    tiered, stores, fake_shopify, django_capture_on_commit_callbacks, batch
):
    group = tiered
    get_redis().flushdb()
    batched = _group_of_customers(stores, "batch")

    with CaptureQueriesContext(connection) as batch_queries, django_capture_on_commit_callbacks(execute=True):
        report = shared_customers_link(group=group, batch=batch)
    assert (report.linked, report.accounts_created, report.reviews) == (13, 5, 0)

    # The same customers in a second set, linked email by email through the per-email path.
    per_email = _group_of_customers(stores, "single")
    with CaptureQueriesContext(connection) as single_queries, django_capture_on_commit_callbacks(execute=True):
        for n in range(len(SHAPES)):
            ids = [pk for (m, _i), pk in per_email.items() if m == n]
            assert services._link(group=group, digest=email_digest(f"single{n}@example.com"), customer_ids=ids)
    # The batch path ran: its set-based writes take fewer statements, discovery included, than
    # the per-email path alone (31 against 82 here with batches of 2).
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


def _fresh_customers(stores, prefix, count, points=10):
    """`count` emails, one customer each in every store, straight into the table (many, fast)."""
    rows = [
        Customer(
            merchant=store,
            shopify_customer_id=f"{prefix}{index}{n}",
            email=f"{prefix}{n}@example.com",
            first_name="Ana",
            last_name=str(n),
            points_balance=points,
            lifetime_points=points,
        )
        for index, (store, _owner) in enumerate(stores)
        for n in range(count)
    ]
    Customer.objects.bulk_create(rows)
    return rows


def _linking_statements(group, batch):
    """The SQL of one linking run, finding the candidates included."""
    with CaptureQueriesContext(connection) as queries:
        report = shared_customers_link(group=group, batch=batch)
    return report, [q["sql"] for q in queries.captured_queries]


def test_a_batch_takes_the_same_few_statements_whatever_its_size(tiered, stores):
    group = tiered
    _fresh_customers(stores, "small", 2)
    small_report, small = _linking_statements(group, batch=500)
    _fresh_customers(stores, "large", 300)
    large_report, large = _linking_statements(group, batch=500)

    assert (small_report.linked, small_report.accounts_created) == (6, 2)
    assert (large_report.linked, large_report.accounts_created, large_report.failed) == (900, 300, 0)
    # One batch each: 2 emails (6 customers) and 300 emails (900 customers) take the same statements.
    assert len(small) == len(large), (small, large)
    writes = [" ".join(sql.replace(" INTO", "").split()[:2]) for sql in large if sql.startswith(("INSERT", "UPDATE"))]
    assert writes == [
        'INSERT "multistore_shared_accounts"',
        'INSERT "points_transactions"',
        'UPDATE "users"',
        'INSERT "multistore_shared_entries"',
        'UPDATE "multistore_shared_accounts"',
        'INSERT "audit_logs"',
    ]
    # Three batches of 100 emails: three times the batch's statements, nothing per email.
    _fresh_customers(stores, "paged", 300)
    _report, paged = _linking_statements(group, batch=100)
    per_batch, rest = divmod(len(paged) - len(large), 2)
    assert rest == 0 and per_batch <= 12, (per_batch, paged)
    assert len(large) - per_batch <= 6  # finding the candidates: a few reads, once per run
    assert SharedAccount.objects.filter(group=group).count() == 602


def test_a_failing_batch_is_split_and_only_the_bad_email_stays_unlinked(tiered, stores, caplog):
    group = tiered
    _fresh_customers(stores, "good", 6)
    # Linking this email would take its shared balance past what the ledger columns hold:
    # PostgreSQL refuses the batch, the halves are retried, and only this email is left out.
    bad = _fresh_customers(stores[:2], "bad", 1, points=2_000_000_000)

    report = shared_customers_link(group=group, batch=500)

    assert (report.linked, report.accounts_created, report.failed) == (18, 6, 1)
    assert "multi-store link of one email" in caplog.text
    assert not Customer.objects.filter(pk__in=[c.pk for c in bad], shared_customer_id__isnull=False).exists()
    assert not SharedAccount.objects.filter(email_digest=email_digest("bad0@example.com")).exists()
    assert Customer.objects.filter(email__startswith="good", shared_customer_id__isnull=True).count() == 0
    for account in SharedAccount.objects.filter(group=group):
        assert account.points_balance == 30
        assert ledger_totals(group_id=group.pk)[account.pk] == 30
    # The next run tries the bad email again (and fails it again, alone).
    assert shared_customers_link(group=group).failed == 1
