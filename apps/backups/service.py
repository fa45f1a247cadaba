"""Encrypted PostgreSQL backups: create, restore, drill, prune (RELIABILITY F1).

`pg_dump -Fc` is read from its pipe and encrypted chunk by chunk on the way to storage: no
plaintext touches disk. The manifest (row counts per table, per-merchant ledger sums) is taken
in the same snapshot as the dump (`pg_export_snapshot` + `pg_dump --snapshot`), so the drill can
demand exact equality.
"""

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connections

from apps.core.models import PointsTransaction

from .crypto import EncryptingReader, backup_keys, decrypt_bytes, decrypt_stream, encrypt_bytes
from .erasures import erasures_all

logger = logging.getLogger(__name__)

NAME_FORMAT = "%Y%m%dT%H%M%SZ"
DUMP_SUFFIX = ".dump.enc"
MANIFEST_SUFFIX = ".manifest.enc"


class BackupError(Exception):
    """A backup could not be made, restored or verified."""


@dataclass
class Database:
    host: str
    port: str
    user: str
    password: str
    name: str

    @classmethod
    def from_alias(cls, alias: str = "default", *, name: str | None = None) -> "Database":
        data = connections[alias].settings_dict
        if not data["ENGINE"].endswith("postgresql"):
            raise BackupError("backups need PostgreSQL")
        return cls(
            host=data.get("HOST") or "127.0.0.1",
            port=str(data.get("PORT") or 5432),
            user=data.get("USER") or "postgres",
            password=data.get("PASSWORD") or "",
            name=name or data["NAME"],
        )

    def with_name(self, name: str) -> "Database":
        return Database(self.host, self.port, self.user, self.password, name)

    @property
    def url(self) -> str:
        secret = f":{self.password}" if self.password else ""
        return f"postgres://{self.user}{secret}@{self.host}:{self.port}/{self.name}"

    def connect(self, **kwargs):
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password or None, dbname=self.name, **kwargs
        )

    def cli_args(self) -> list[str]:
        return ["-h", self.host, "-p", self.port, "-U", self.user]

    def env(self) -> dict:
        return {**os.environ, **({"PGPASSWORD": self.password} if self.password else {})}


def _tool(name: str) -> str:
    directory = settings.BACKUP_PG_BIN_DIR
    return str(Path(directory) / name) if directory else name


def backup_name(moment: datetime) -> str:
    return "db-" + moment.astimezone(UTC).strftime(NAME_FORMAT)


def backup_moment(name: str) -> datetime | None:
    stem = Path(name).name.removeprefix("db-").split(".", 1)[0]
    try:
        return datetime.strptime(stem, NAME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def manifest_collect(cursor) -> dict:
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    tables = [row[0] for row in cursor.fetchall()]
    counts = {}
    for table in tables:
        cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608  (names from pg_tables)
        counts[table] = cursor.fetchone()[0]
    ledger = PointsTransaction._meta.db_table
    merchant_column = PointsTransaction._meta.get_field("merchant").column
    sums = {}
    if ledger in counts:
        cursor.execute(
            f'SELECT "{merchant_column}", COALESCE(SUM(points), 0) FROM "{ledger}" GROUP BY 1 ORDER BY 1'  # noqa: S608
        )
        sums = {str(merchant): int(total) for merchant, total in cursor.fetchall()}
    return {"tables": counts, "ledger_sums": sums}


def backup_create(*, alias: str = "default", now: datetime | None = None, storage=None) -> dict:
    """Dump the database encrypted into storage with its manifest; return the manifest."""
    from .storage import backup_storage

    storage = storage or backup_storage()
    backup_keys()  # refuse before dumping anything when no key is configured
    moment = now or datetime.now(UTC)
    name = backup_name(moment)
    database = Database.from_alias(alias)
    with database.connect(autocommit=False) as conn, conn.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        manifest = manifest_collect(cursor)
        process = subprocess.Popen(  # noqa: S603
            [_tool("pg_dump"), *database.cli_args(), "-Fc", "--no-owner", f"--snapshot={snapshot}", database.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=database.env(),
        )
        reader = EncryptingReader(process.stdout)
        try:
            storage.put(
                name + DUMP_SUFFIX, reader, metadata={"created-at": moment.isoformat(), "key-id": reader.key_id}
            )
        finally:
            process.stdout.close()
            stderr = process.stderr.read().decode(errors="replace")
            code = process.wait()
        if code != 0:
            storage.delete(name + DUMP_SUFFIX)
            raise BackupError(f"pg_dump failed ({code}): {stderr.strip()}")
        conn.rollback()
    manifest.update(
        {
            "name": name,
            "created_at": moment.isoformat(),
            "database": database.name,
            "key_id": reader.key_id,
            "erasures": len(erasures_all()),
        }
    )
    storage.put(
        name + MANIFEST_SUFFIX,
        _bytes_reader(encrypt_bytes(json.dumps(manifest, sort_keys=True).encode())),
        metadata={"created-at": moment.isoformat()},
    )
    logger.info("backup %s written (%s tables)", name, len(manifest["tables"]))
    return manifest


def _bytes_reader(data: bytes):
    import io

    return io.BytesIO(data)


def backup_names(storage) -> list[str]:
    """Backup names (without suffix) that have both their dump and their manifest, oldest first."""
    names = set(storage.names())
    found = [
        item.removesuffix(DUMP_SUFFIX)
        for item in names
        if item.endswith(DUMP_SUFFIX) and item.removesuffix(DUMP_SUFFIX) + MANIFEST_SUFFIX in names
    ]
    return sorted((n for n in found if backup_moment(n)), key=backup_moment)


def backup_latest(storage) -> str:
    names = backup_names(storage)
    if not names:
        raise BackupError("no backup found")
    return names[-1]


def manifest_read(storage, name: str) -> dict:
    with storage.open(name + MANIFEST_SUFFIX) as handle:
        return json.loads(decrypt_bytes(handle.read()))


def backup_verify(storage, name: str) -> int:
    """Decrypt the whole dump without keeping it: raises BackupDecryptionError when altered."""
    size = 0
    with storage.open(name + DUMP_SUFFIX) as handle:
        for chunk in decrypt_stream(handle):
            size += len(chunk)
    return size


def database_create(database: Database, name: str) -> Database:
    with database.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database.with_name(name)


def database_drop(database: Database, name: str) -> None:
    with database.connect(autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(args: list[str], *, database_url: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run manage.py with `database_url` as its default database (as production would)."""
    env = {**os.environ, "DATABASE_URL": database_url, "TEST_DATABASE_URL": database_url}
    return subprocess.run(  # noqa: S603
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def backup_restore(
    *, name: str, target: str, storage=None, replay_erasures: bool = True, erasures: list[dict] | None = None
) -> dict:
    """Restore backup `name` into database `target` (same server as `default`; it must exist and
    be empty), then re-apply every logged GDPR erasure. Refuses an altered backup before
    restoring a byte."""
    from .storage import backup_storage

    storage = storage or backup_storage()
    manifest = manifest_read(storage, name)
    backup_verify(storage, name)
    database = Database.from_alias("default").with_name(target)
    process = subprocess.Popen(  # noqa: S603
        [_tool("pg_restore"), *database.cli_args(), "--no-owner", "--no-privileges", "--exit-on-error", "-d", target],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=database.env(),
    )
    try:
        with storage.open(name + DUMP_SUFFIX) as handle:
            for chunk in decrypt_stream(handle):
                process.stdin.write(chunk)
    finally:
        process.stdin.close()
        stderr = process.stderr.read().decode(errors="replace")
        code = process.wait()
    if code != 0:
        raise BackupError(f"pg_restore failed ({code}): {stderr.strip()}")
    if replay_erasures:
        # The log of the live database (every erasure so far) plus the restored one's.
        records = erasures_all() if erasures is None else erasures
        result = _manage(["backup_erasures_apply"], database_url=database.url, stdin=json.dumps(records))
        if result.returncode != 0:
            raise BackupError(f"re-applying erasures failed: {result.stderr.strip()}")
    return manifest


def backup_drill(*, storage=None, name: str | None = None) -> dict:
    """Restore the latest backup into a scratch database, `migrate --check` it, compare row
    counts and per-merchant ledger sums with the manifest; raise BackupError on any difference."""
    from .storage import backup_storage

    storage = storage or backup_storage()
    name = name or backup_latest(storage)
    server = Database.from_alias("default")
    scratch = f"{server.name}_drill_{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"[:63]
    database = database_create(server, scratch)
    try:
        manifest = backup_restore(name=name, target=scratch, storage=storage, replay_erasures=False)
        check = _manage(["migrate", "--check"], database_url=database.url)
        if check.returncode != 0:
            raise BackupError(f"migrate --check failed on the restored database: {check.stdout}{check.stderr}")
        with database.connect() as conn, conn.cursor() as cursor:
            found = manifest_collect(cursor)
        differences = [
            f"{table}: manifest {manifest['tables'].get(table)} restored {found['tables'].get(table)}"
            for table in sorted(set(manifest["tables"]) | set(found["tables"]))
            if manifest["tables"].get(table) != found["tables"].get(table)
        ]
        differences += [
            f"ledger sum of merchant {merchant}: manifest {manifest['ledger_sums'].get(merchant)} "
            f"restored {found['ledger_sums'].get(merchant)}"
            for merchant in sorted(set(manifest["ledger_sums"]) | set(found["ledger_sums"]))
            if manifest["ledger_sums"].get(merchant) != found["ledger_sums"].get(merchant)
        ]
        if differences:
            raise BackupError(f"restore drill of {name} FAILED: " + "; ".join(differences))
    finally:
        database_drop(server, scratch)
    logger.info("restore drill of %s passed (%s tables)", name, len(manifest["tables"]))
    return {"name": name, "tables": len(manifest["tables"]), "merchants": len(manifest["ledger_sums"])}


def backup_prune(*, storage=None, now: datetime | None = None, keep_days: int | None = None) -> list[str]:
    """Delete backups older than `keep_days` by the date in their name (never by count); the
    newest backup is always kept."""
    from .storage import backup_storage

    storage = storage or backup_storage()
    keep_days = settings.BACKUP_KEEP_DAYS if keep_days is None else keep_days
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    names = backup_names(storage)
    newest = names[-1] if names else None
    deleted = []
    for item in storage.names():
        moment = backup_moment(item)
        base = item.removesuffix(DUMP_SUFFIX).removesuffix(MANIFEST_SUFFIX)
        if moment is None or moment >= cutoff or base == newest:
            continue
        storage.delete(item)
        deleted.append(item)
    return deleted
