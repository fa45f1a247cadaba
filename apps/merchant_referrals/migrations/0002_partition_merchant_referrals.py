"""`merchant_referrals` hash-partitioned by the advocate merchant on PostgreSQL (16 partitions),
plus the seeds' index `idx_merchant_referrals_advocate_merchant_id` (its name is too long for a
Django `Meta.indexes`).

A partitioned table's primary key must contain the partition key, so it is
(merchant_referral_id, advocate_merchant_id); rows of other tables point at a referral by id
without a database foreign key (`MerchantReferralReward.referral`). On SQLite (the first-run
default) only the seeds' index is created. No `%` in the SQL: it runs without parameters.
"""

from django.db import migrations

PARTITIONS = 16

PARTITION = """
CREATE TABLE merchant_referrals_partitioned (
    LIKE merchant_referrals INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY HASH (advocate_merchant_id);
DROP TABLE merchant_referrals;
ALTER TABLE merchant_referrals_partitioned RENAME TO merchant_referrals;
ALTER TABLE merchant_referrals ADD CONSTRAINT merchant_referrals_pkey
    PRIMARY KEY (merchant_referral_id, advocate_merchant_id);
ALTER TABLE merchant_referrals ADD CONSTRAINT merchant_referrals_advocate_fk
    FOREIGN KEY (advocate_merchant_id) REFERENCES merchants (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE merchant_referrals ADD CONSTRAINT merchant_referrals_referred_fk
    FOREIGN KEY (referred_merchant_id) REFERENCES merchants (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE merchant_referrals ADD CONSTRAINT merchant_referrals_link_fk
    FOREIGN KEY (link_id) REFERENCES merchant_referral_links (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX idx_mref_advocate_time ON merchant_referrals (advocate_merchant_id, created_at);
CREATE INDEX idx_mref_status_time ON merchant_referrals (status, created_at);
CREATE INDEX merchant_referrals_referred_merchant_id_48686029 ON merchant_referrals (referred_merchant_id);
"""
PARTITION_TABLES = [
    f"CREATE TABLE merchant_referrals_p{i} PARTITION OF merchant_referrals "
    f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})"
    for i in range(PARTITIONS)
]

SEEDS_INDEX = "CREATE INDEX idx_merchant_referrals_advocate_merchant_id ON merchant_referrals (advocate_merchant_id)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PARTITION, params=None)
        for statement in PARTITION_TABLES:
            schema_editor.execute(statement, params=None)
    schema_editor.execute(SEEDS_INDEX, params=None)


def backwards(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS idx_merchant_referrals_advocate_merchant_id", params=None)


class Migration(migrations.Migration):
    dependencies = [("merchant_referrals", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
