"""`rfm_score_history` hash-partitioned by merchant on PostgreSQL (16 partitions), plus the seeds'
index `idx_rfm_score_history_customer_id` (its name is too long for a Django `Meta.indexes`).

A partitioned table's primary key must contain the partition key, so it is
(history_id, merchant_id). On SQLite (the first-run default) only the index is created.
"""

from django.db import migrations

PARTITIONS = 16

PARTITION = f"""
CREATE TABLE rfm_score_history_partitioned (
    LIKE rfm_score_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY HASH (merchant_id);
DROP TABLE rfm_score_history;
ALTER TABLE rfm_score_history_partitioned RENAME TO rfm_score_history;
ALTER TABLE rfm_score_history ADD CONSTRAINT rfm_score_history_pkey PRIMARY KEY (history_id, merchant_id);
ALTER TABLE rfm_score_history ADD CONSTRAINT rfm_score_history_merchant_id_fk
    FOREIGN KEY (merchant_id) REFERENCES merchants (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE rfm_score_history ADD CONSTRAINT rfm_score_history_customer_id_fk
    FOREIGN KEY (customer_id) REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX idx_rfm_score_history_run ON rfm_score_history (run_id, customer_id);
DO $$
BEGIN
    FOR i IN 0..{PARTITIONS - 1} LOOP
        EXECUTE format(
            'CREATE TABLE rfm_score_history_p%s PARTITION OF rfm_score_history '
            'FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER %s)', i, i);
    END LOOP;
END $$;
"""

SEEDS_INDEX = "CREATE INDEX idx_rfm_score_history_customer_id ON rfm_score_history (customer_id, created_at)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PARTITION, params=None)
    schema_editor.execute(SEEDS_INDEX)


def backwards(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS idx_rfm_score_history_customer_id")


class Migration(migrations.Migration):
    dependencies = [("rfm", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
