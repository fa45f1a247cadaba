"""`gamification_achievements` and `team_leaderboards` hash-partitioned by merchant on
PostgreSQL (16 partitions each), plus the seeds' indexes `idx_gamification_achievements_customer_id`
and `idx_team_leaderboards_merchant_id_cycle` (names too long for `Meta.indexes`) and the seeds'
CHECK that a badge name holds at least one of the 22 locale keys.

A partitioned table's primary key and unique constraints must contain the partition key, so the
keys are (achievement_id, merchant_id) and (leaderboard_id, merchant_id); the "once per badge"
and "one row per team and cycle" constraints already start with merchant_id. On SQLite (the
first-run default) only the indexes are created.

The SQL is executed with `params=None`: psycopg would read the `%s` of `format()` as placeholders.
"""

from django.db import migrations

from apps.core.locales import LOCALES

PARTITIONS = 16
LOCALE_ARRAY = "ARRAY[" + ", ".join(f"'{code}'" for code in LOCALES) + "]"


def _partition(table: str, pk: str, extra: str) -> str:
    return f"""
CREATE TABLE {table}_partitioned (
    LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS
) PARTITION BY HASH (merchant_id);
DROP TABLE {table};
ALTER TABLE {table}_partitioned RENAME TO {table};
ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({pk}, merchant_id);
ALTER TABLE {table} ADD CONSTRAINT {table}_merchant_id_fk
    FOREIGN KEY (merchant_id) REFERENCES merchants (id) DEFERRABLE INITIALLY DEFERRED;
{extra}
DO $$
BEGIN
    FOR i IN 0..{PARTITIONS - 1} LOOP
        EXECUTE format(
            'CREATE TABLE {table}_p%s PARTITION OF {table} '
            'FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER %s)', i, i);
    END LOOP;
END $$;
"""


ACHIEVEMENTS = _partition(
    "gamification_achievements",
    "achievement_id",
    f"""
ALTER TABLE gamification_achievements ADD CONSTRAINT gamification_achievements_once
    UNIQUE (merchant_id, customer_id, badge_definition_id);
ALTER TABLE gamification_achievements ADD CONSTRAINT gamification_achievements_customer_id_fk
    FOREIGN KEY (customer_id) REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE gamification_achievements ADD CONSTRAINT gamification_achievements_badge_definition_id_fk
    FOREIGN KEY (badge_definition_id) REFERENCES gamification_badges (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE gamification_achievements ADD CONSTRAINT gamification_achievements_badge_locale
    CHECK (jsonb_typeof(badge) = 'object' AND badge ?| {LOCALE_ARRAY});
""",
)

LEADERBOARDS = _partition(
    "team_leaderboards",
    "leaderboard_id",
    """
ALTER TABLE team_leaderboards ADD CONSTRAINT team_leaderboards_team_cycle UNIQUE (merchant_id, team_id, cycle);
""",
)

INDEXES = [
    "CREATE INDEX idx_gamification_achievements_customer_id ON gamification_achievements (customer_id, created_at)",
    "CREATE INDEX idx_team_leaderboards_merchant_id_cycle ON team_leaderboards (merchant_id, cycle)",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ACHIEVEMENTS, params=None)
        schema_editor.execute(LEADERBOARDS, params=None)
    for statement in INDEXES:
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS idx_gamification_achievements_customer_id")
    schema_editor.execute("DROP INDEX IF EXISTS idx_team_leaderboards_merchant_id_cycle")


class Migration(migrations.Migration):
    dependencies = [("gamification", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
