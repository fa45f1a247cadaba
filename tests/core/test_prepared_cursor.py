"""`connection.prepared_cursor()` (apps.core.db.postgresql): prepared once per connection, logged
like any Django query; the storefront's shopper lookup goes through it."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.services import customer_get_or_create_by_shopify_id
from apps.core.tenancy import merchant_scope
from tests.factories import CustomerFactory


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_on_first_use_and_reused(db):
    sql = "SELECT %(a)s::int + %(b)s::int"

    with CaptureQueriesContext(connection) as captured:
        answers = []
        for a in range(3):
            with connection.prepared_cursor() as cursor:
                cursor.execute(sql, {"a": a, "b": 10})
                answers.append(cursor.fetchone()[0])

    assert answers == [10, 11, 12]
    assert [s for s in prepared_statements() if "$1::int + $2::int" in s] == ["SELECT $1::int + $2::int"]
    assert len(captured.captured_queries) == 3  # Django's query log sees each execution


def test_plain_cursors_still_bind_on_the_client_and_prepare_nothing(db):
    with connection.cursor() as cursor:
        for _ in range(6):
            cursor.execute("SELECT %s::int * 2", [21])

    assert not [s for s in prepared_statements() if "* 2" in s]


def test_the_shopper_lookup_is_prepared(merchant, other_merchant):
    CustomerFactory(merchant=merchant, shopify_customer_id="6001", points_balance=42)
    other = other_merchant["merchant"]
    CustomerFactory(merchant=other, shopify_customer_id="6001", points_balance=7)

    with merchant_scope(merchant):
        first = customer_get_or_create_by_shopify_id(merchant=merchant, shopify_customer_id="6001")
    with merchant_scope(other):
        second = customer_get_or_create_by_shopify_id(merchant=other, shopify_customer_id="6001")

    assert (first.merchant_id, first.points_balance) == (merchant.pk, 42)
    assert (second.merchant_id, second.points_balance) == (other.pk, 7)
    lookups = [s for s in prepared_statements() if "u.shopify_customer_id = $" in s]
    assert len(lookups) == 1  # one plan, both shops


def test_the_lookup_leaves_the_timestamps_for_later_and_they_still_read_and_save(merchant, django_assert_num_queries):
    from apps.core.models import Customer
    from apps.core.services import points_earn

    stored = CustomerFactory(merchant=merchant, shopify_customer_id="6001")
    with merchant_scope(merchant):
        with django_assert_num_queries(1):
            customer = customer_get_or_create_by_shopify_id(merchant=merchant, shopify_customer_id="6001")
        assert customer.get_deferred_fields() == {"created_at", "updated_at", "last_order_at", "redacted_at"}
        with django_assert_num_queries(1):
            assert customer.created_at == stored.created_at  # read on first access
        points_earn(merchant=merchant, customer=customer, points=50, idempotency_key="deferred-earn")

    row = Customer.objects.get(pk=stored.pk)
    assert row.points_balance == stored.points_balance + 50
    assert row.updated_at > stored.updated_at
