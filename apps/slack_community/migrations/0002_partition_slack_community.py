"""`slack_community` hash-partitioned by merchant on PostgreSQL (16 partitions), plus the seeds'
index `idx_slack_community_merchant_id`.

A partitioned table's primary key must contain the partition key, so it is
(community_id, merchant_id), and no unique index on `slack_user_id` alone can exist: the
unpartitioned `slack_community_user_ids` table holds that uniqueness. On SQLite (the first-run
default) only the seeds' index is created. No `%` in the SQL: it runs without parameters.
"""

from django.db import migrations

PARTITIONS = 16

PARTITION = """
CREATE TABLE slack_community_partitioned (
    LIKE slack_community INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY HASH (merchant_id);
DROP TABLE slack_community;
ALTER TABLE slack_community_partitioned RENAME TO slack_community;
ALTER TABLE slack_community ADD CONSTRAINT slack_community_pkey PRIMARY KEY (community_id, merchant_id);
ALTER TABLE slack_community ADD CONSTRAINT slack_community_merchant_id_31868186_fk_merchants_id
    FOREIGN KEY (merchant_id) REFERENCES merchants (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX slack_comm_merchant_status ON slack_community (merchant_id, status);
CREATE INDEX slack_community_staff_id_95e9bc85 ON slack_community (staff_id);
"""
PARTITION_TABLES = [
    f"CREATE TABLE slack_community_p{i} PARTITION OF slack_community "
    f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})"
    for i in range(PARTITIONS)
]

SEEDS_INDEX = "CREATE INDEX idx_slack_community_merchant_id ON slack_community (merchant_id)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PARTITION, params=None)
        for statement in PARTITION_TABLES:
            schema_editor.execute(statement, params=None)
    schema_editor.execute(SEEDS_INDEX, params=None)


def backwards(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS idx_slack_community_merchant_id", params=None)


class Migration(migrations.Migration):
    dependencies = [("slack_community", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
