"""PostgreSQL refuses any change to the value columns of a ledger entry (append-only, C1).

References to orders, rewards and staff may still be cleared when those rows are erased.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION points_transactions_append_only() RETURNS trigger AS $$
BEGIN
    IF NEW.points IS DISTINCT FROM OLD.points
       OR NEW.balance_after IS DISTINCT FROM OLD.balance_after
       OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.customer_id IS DISTINCT FROM OLD.customer_id
       OR NEW.merchant_id IS DISTINCT FROM OLD.merchant_id
       OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
       OR NEW.reverses_id IS DISTINCT FROM OLD.reverses_id
       OR NEW.reversed_amount IS DISTINCT FROM OLD.reversed_amount
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'points_transactions is append-only; write a reversing entry'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER points_transactions_append_only
    BEFORE UPDATE ON points_transactions
    FOR EACH ROW EXECUTE FUNCTION points_transactions_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS points_transactions_append_only ON points_transactions;
DROP FUNCTION IF EXISTS points_transactions_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
