"""import_orders: idempotent CSV imports that earn points, report bad lines and touch one shop only."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.core.models import Customer, Order, PointsTransaction
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = "customer id,email,order id,processed_at,total,currency\n"
GOOD = (
    "1001,ana@example.com,5001,2025-03-01T10:00:00Z,120.50,USD\n"
    "1001,ana@example.com,5002,2025-04-02T11:30:00+02:00,30.00,USD\n"
    "1002,,5003,2025-05-03 09:15:00,0.40,USD\n"
)


def run_import(
    tmp_path,
    body: str,
    shop="alpha-pets.myshopify.com",
    header="customer_id,email,order_id,processed_at,total,currency\n",
):
    path = tmp_path / "orders.csv"
    path.write_text(header + body, encoding="utf-8")
    out, err = StringIO(), StringIO()
    call_command("import_orders", shop=shop, csv_path=str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot(merchant) -> tuple:
    customers = Customer.objects.filter(merchant=merchant)
    return (
        customers.count(),
        Order.objects.filter(merchant=merchant).count(),
        PointsTransaction.objects.filter(merchant=merchant).count(),
        sorted(customers.values_list("shopify_customer_id", "points_balance", "orders_count", "total_spent")),
    )


def test_import_creates_orders_customers_and_points(tmp_path, merchant):
    out, err = run_import(tmp_path, GOOD, header=HEADER)

    assert "Imported 3 orders, skipped 0 already present, rejected 0" in out
    assert err == ""
    ana = Customer.objects.get(merchant=merchant, shopify_customer_id="1001")
    assert ana.email == "ana@example.com"
    assert ana.points_balance == 120 + 30 and ana.lifetime_points == 150
    assert ana.orders_count == 2 and ana.total_spent == Decimal("150.50")
    assert ana.last_order_at.isoformat() == "2025-04-02T09:30:00+00:00"
    keys = set(PointsTransaction.objects.filter(merchant=merchant).values_list("idempotency_key", flat=True))
    # The 0.40 order earns no point, so it has no entry.
    assert keys == {"import:order:5001", "import:order:5002"}


def test_running_the_same_file_twice_creates_nothing_new(tmp_path, merchant):
    run_import(tmp_path, GOOD)
    first = snapshot(merchant)

    out, _ = run_import(tmp_path, GOOD)

    assert snapshot(merchant) == first
    assert "Imported 0 orders, skipped 3 already present, rejected 0" in out


def test_bad_lines_are_reported_with_line_numbers_and_good_ones_imported(tmp_path, merchant):
    body = (
        "2001,b@example.com,6001,2025-01-01T00:00:00Z,10.00,USD\n"  # line 2: good
        "2001,b@example.com,6002,yesterday,10.00,USD\n"  # line 3: bad date
        "2002,c@example.com,6003,2025-01-02T00:00:00Z,-5.00,USD\n"  # line 4: negative
        "2002,c@example.com,6004,2025-01-02T00:00:00Z,ten,USD\n"  # line 5: not a number
        "2002,c@example.com,6005,2025-01-02T00:00:00Z,12.00,usd\n"  # line 6: currency format
        "2002,c@example.com,6006,2025-01-02T00:00:00Z\n"  # line 7: missing columns
        "2003,d@example.com,6001,2025-01-01T00:00:00Z,99.00,USD\n"  # line 8: duplicate id, other data
        "2003,d@example.com,6007,2025-02-01T00:00:00Z,20.00,USD\n"  # line 9: good
    )

    out, err = run_import(tmp_path, body)

    assert "Imported 2 orders, skipped 0 already present, rejected 6" in out
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"Line {n}" for n in (3, 4, 5, 6, 7, 8)]
    assert "bad date" in lines[0] and "negative" in lines[1] and "not a number" in lines[2]
    assert "currency" in lines[3] and "missing column" in lines[4] and "line 2" in lines[5]
    assert set(Order.objects.filter(merchant=merchant).values_list("shopify_order_id", flat=True)) == {"6001", "6007"}
    assert "b@example.com" not in err  # no personal data in the report


def test_an_order_already_imported_with_other_data_is_rejected(tmp_path, merchant):
    run_import(tmp_path, GOOD)

    out, err = run_import(tmp_path, "1001,ana@example.com,5001,2025-03-01T10:00:00Z,999.00,USD\n")

    assert "rejected 1" in out and "Line 2:" in err
    assert Order.objects.get(merchant=merchant, shopify_order_id="5001").total_price == Decimal("120.50")


def test_unknown_shop_fails_and_changes_nothing(tmp_path, merchant):
    with pytest.raises(CommandError, match="Unknown shop"):
        run_import(tmp_path, GOOD, shop="nobody.myshopify.com")

    assert Order.objects.count() == 0


def test_malformed_header_fails_clearly(tmp_path, merchant):
    with pytest.raises(CommandError, match="header"):
        run_import(tmp_path, GOOD, header="customer,mail,order,date,amount\n")

    assert Order.objects.count() == 0


def test_a_second_merchants_data_is_untouched(tmp_path, merchant, other_merchant):
    other = other_merchant["merchant"]
    twin = CustomerFactory(merchant=other, shopify_customer_id="1001", email="twin@example.com")
    before = snapshot(other)

    run_import(tmp_path, GOOD)

    assert snapshot(other) == before
    twin.refresh_from_db()
    assert twin.email == "twin@example.com" and twin.points_balance == 0 and twin.orders_count == 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM users u LEFT JOIN (SELECT customer_id, sum(points) s FROM points_transactions"
            " GROUP BY 1) t ON t.customer_id = u.id WHERE u.points_balance <> coalesce(t.s, 0)"
        )
        assert cursor.fetchone()[0] == 0
