"""`wallet_exports` hash-partitioned by merchant on PostgreSQL (16 partitions), plus the seeds'
index `idx_wallet_exports_customer_id`.

A partitioned table's primary key must contain the partition key, so it is
(export_id, merchant_id); no table references `wallet_exports`. On SQLite (the first-run
default) only the index is created.
"""

from django.db import migrations

PARTITIONS = 16

PARTITION = f"""
CREATE TABLE wallet_exports_partitioned (
    LIKE wallet_exports INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY HASH (merchant_id);
DROP TABLE wallet_exports;
ALTER TABLE wallet_exports_partitioned RENAME TO wallet_exports;
ALTER TABLE wallet_exports ADD CONSTRAINT wallet_exports_pkey PRIMARY KEY (export_id, merchant_id);
ALTER TABLE wallet_exports ADD CONSTRAINT wallet_exports_merchant_id_fk
    FOREIGN KEY (merchant_id) REFERENCES merchants (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE wallet_exports ADD CONSTRAINT wallet_exports_customer_id_fk
    FOREIGN KEY (customer_id) REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX wallet_exports_merchant_time ON wallet_exports (merchant_id, created_at);
DO $$
BEGIN
    FOR i IN 0..{PARTITIONS - 1} LOOP
        EXECUTE format(
            'CREATE TABLE wallet_exports_p%s PARTITION OF wallet_exports '
            'FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER %s)', i, i);
    END LOOP;
END $$;
"""

SEEDS_INDEX = "CREATE INDEX idx_wallet_exports_customer_id ON wallet_exports (customer_id)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL holds literal `%s` for PL/pgSQL's format(), not driver placeholders.
        schema_editor.execute(PARTITION, params=None)
    schema_editor.execute(SEEDS_INDEX)


def backwards(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS idx_wallet_exports_customer_id")


class Migration(migrations.Migration):
    dependencies = [("wallet", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
