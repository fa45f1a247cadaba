"""PostgreSQL keeps the shared ledger append-only (as core 0002 does for `points_transactions`).

An UPDATE may only clear the references to the source customer and store entry (erasure sets
them NULL); every value column is frozen. A DELETE is refused, except of the entries of a shop
that has uninstalled the app (shop/redact erases every row of such a shop, this table's rows
that point at its customers included). No-op on other databases (the model refuses both too).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION multistore_shared_entries_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM merchants WHERE id = OLD.source_merchant_id AND NOT is_installed) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'multistore_shared_entries is append-only; write a new entry'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.account_id IS DISTINCT FROM OLD.account_id
       OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.source_merchant_id IS DISTINCT FROM OLD.source_merchant_id
       OR (NEW.source_customer_id IS DISTINCT FROM OLD.source_customer_id AND NEW.source_customer_id IS NOT NULL)
       OR (NEW.source_transaction_id IS DISTINCT FROM OLD.source_transaction_id
           AND NEW.source_transaction_id IS NOT NULL)
       OR NEW.points IS DISTINCT FROM OLD.points
       OR NEW.balance_after IS DISTINCT FROM OLD.balance_after
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'multistore_shared_entries is append-only; write a new entry'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER multistore_shared_entries_append_only
    BEFORE UPDATE OR DELETE ON multistore_shared_entries
    FOR EACH ROW EXECUTE FUNCTION multistore_shared_entries_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS multistore_shared_entries_append_only ON multistore_shared_entries;
DROP FUNCTION IF EXISTS multistore_shared_entries_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("multistore", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
