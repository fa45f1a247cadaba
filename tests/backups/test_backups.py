"""Encrypted backups, restore, the restore drill and erasure replay (RELIABILITY F1)."""

import base64
import io
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from apps.backups.crypto import BackupDecryptionError, decrypt_bytes, encrypt_bytes
from apps.backups.models import ErasureRecord
from apps.backups.service import (
    DUMP_SUFFIX,
    MANIFEST_SUFFIX,
    BackupError,
    Database,
    backup_create,
    backup_drill,
    backup_latest,
    backup_names,
    backup_prune,
    backup_restore,
    database_create,
    database_drop,
    manifest_read,
)
from apps.backups.storage import LocalDirectoryStorage
from apps.core.models import Customer, PointsTransaction
from apps.core.services.ledger import points_earn
from apps.shopify.webhooks.compliance import customer_redact
from tests.factories import CustomerFactory, MerchantFactory

pytestmark = pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump/pg_restore are not installed")

KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def backups(settings, tmp_path):
    settings.BACKUP_ENCRYPTION_KEYS = f"bk1:{KEY}"
    settings.BACKUP_LOCAL_DIRECTORY = str(tmp_path / "backups")
    return LocalDirectoryStorage(tmp_path / "backups")


@pytest.fixture
def scratch_database(db):
    server = Database.from_alias("default")
    name = f"{server.name}_restore_{os.getpid()}"[:63]
    database_drop(server, name)
    database = database_create(server, name)
    yield database
    database_drop(server, name)


def _seed():
    merchant = MerchantFactory(shop_domain="alpha-pets.myshopify.com")
    other = MerchantFactory(shop_domain="beta-gadgets.myshopify.com")
    ada = CustomerFactory(merchant=merchant, email="ada@example.com", shopify_customer_id="7001")
    bob = CustomerFactory(merchant=other, email="bob@example.com", shopify_customer_id="7002")
    for index, (customer, points) in enumerate([(ada, 120), (ada, 30), (bob, 55)]):
        points_earn(merchant=customer.merchant, customer=customer, points=points, idempotency_key=f"seed:{index}")
    return merchant, other, ada, bob


def test_chunked_encryption_round_trips_and_refuses_any_change(settings):
    settings.BACKUP_ENCRYPTION_KEYS = f"bk1:{KEY}"
    data = os.urandom(3 * 1024 * 1024 + 17)
    sealed = encrypt_bytes(data)
    assert data[:64] not in sealed and b"bk1" in sealed[:16]
    assert decrypt_bytes(sealed) == data
    flipped = bytearray(sealed)
    flipped[len(sealed) // 2] ^= 1
    with pytest.raises(BackupDecryptionError, match="GCM tag"):
        decrypt_bytes(bytes(flipped))
    with pytest.raises(BackupDecryptionError, match=r"truncated|authentication"):
        decrypt_bytes(sealed[: len(sealed) - 1024 * 1024])
    # A new primary key still decrypts backups made with the old one while it is listed.
    other = base64.b64encode(b"n" * 32).decode()
    settings.BACKUP_ENCRYPTION_KEYS = f"bk2:{other},bk1:{KEY}"
    assert decrypt_bytes(sealed) == data
    settings.BACKUP_ENCRYPTION_KEYS = f"bk2:{other}"
    with pytest.raises(BackupDecryptionError, match="not configured"):
        decrypt_bytes(sealed)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_backup_restore_and_drill_match_the_manifest(backups, scratch_database):
    merchant, other, _ada, _bob = _seed()
    manifest = backup_create(storage=backups)

    assert manifest["ledger_sums"] == {merchant.pk: 150, other.pk: 55}
    assert manifest["tables"]["points_transactions"] == 3 and manifest["tables"]["users"] == 2
    assert all(b"ada@example.com" not in path.read_bytes() for path in backups.root.iterdir())
    assert manifest_read(backups, backup_latest(backups)) == manifest

    backup_restore(name=manifest["name"], target=scratch_database.name, storage=backups)
    with scratch_database.connect() as conn:
        rows = conn.execute("SELECT merchant_id, SUM(points) FROM points_transactions GROUP BY 1").fetchall()
    assert {m: int(s) for m, s in rows} == {merchant.pk: 150, other.pk: 55}

    result = backup_drill(storage=backups)
    assert result["name"] == manifest["name"] and result["merchants"] == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_drill_fails_loudly_when_the_restore_differs_from_the_manifest(backups):
    _seed()
    manifest = backup_create(storage=backups)
    # A manifest that no longer matches its dump (as a broken dump would look).
    from apps.backups.crypto import encrypt_bytes as seal

    manifest["ledger_sums"] = {key: value + 1 for key, value in manifest["ledger_sums"].items()}
    import json

    (backups.root / (manifest["name"] + MANIFEST_SUFFIX)).write_bytes(seal(json.dumps(manifest).encode()))
    with pytest.raises(BackupError, match="FAILED: ledger sum of merchant"):
        backup_drill(storage=backups)


@pytest.mark.django_db(transaction=True)
def test_a_tampered_backup_is_refused_before_anything_is_restored(backups, scratch_database):
    _seed()
    manifest = backup_create(storage=backups)
    path = backups.root / (manifest["name"] + DUMP_SUFFIX)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))

    with pytest.raises(BackupDecryptionError, match="GCM tag"):
        backup_restore(name=manifest["name"], target=scratch_database.name, storage=backups)
    with scratch_database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


def test_backups_refuse_to_run_without_a_backup_key(settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    settings.BACKUP_ENCRYPTION_KEYS = ""
    with pytest.raises(ImproperlyConfigured, match="never written unencrypted"):
        backup_create(storage=LocalDirectoryStorage(tmp_path))
    assert not list(tmp_path.iterdir())


def test_prune_keeps_90_days_by_date_not_by_count(backups, settings):
    now = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    backups.root.mkdir(parents=True)
    ages = [0, 1, 2, 30, 89, 91, 120, 365]
    for days in ages:
        stamp = (now - timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")
        for suffix in (DUMP_SUFFIX, MANIFEST_SUFFIX):
            (backups.root / f"db-{stamp}{suffix}").write_bytes(b"x")
    (backups.root / "README").write_bytes(b"not a backup")

    deleted = backup_prune(storage=backups, now=now)

    assert len(deleted) == 6  # 91, 120 and 365 days old, dump and manifest each
    kept = [datetime.strptime(n.removeprefix("db-"), "%Y%m%dT%H%M%SZ") for n in backup_names(backups)]
    assert len(kept) == 5 and min(kept).replace(tzinfo=UTC) == now - timedelta(days=89)
    assert (backups.root / "README").exists()
    # Many backups on one day are not a reason to delete any: only the date counts.
    for minute in range(10):
        stamp = (now - timedelta(minutes=minute + 1)).strftime("%Y%m%dT%H%M%SZ")
        for suffix in (DUMP_SUFFIX, MANIFEST_SUFFIX):
            (backups.root / f"db-{stamp}{suffix}").write_bytes(b"x")
    assert backup_prune(storage=backups, now=now) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_erasure_done_after_the_backup_is_reapplied_after_restore(backups, scratch_database):
    merchant, _other, ada, bob = _seed()
    manifest = backup_create(storage=backups)
    customer_redact(merchant=merchant, payload={"customer": {"id": 7001, "email": "ada@example.com"}})
    record = ErasureRecord.objects.get()
    assert (record.kind, record.merchant_ref, record.customer_ref) == ("customer", merchant.pk, ada.pk)

    backup_restore(name=manifest["name"], target=scratch_database.name, storage=backups)

    with scratch_database.connect() as conn:
        emails = dict(conn.execute("SELECT id, email FROM users").fetchall())
        log = conn.execute("SELECT kind, merchant_ref, customer_ref FROM backups_erasure_log").fetchall()
        ledger = conn.execute("SELECT SUM(points) FROM points_transactions WHERE customer_id = %s", [ada.pk])
        assert int(ledger.fetchone()[0]) == 150  # anonymised, the ledger keeps its totals
    assert emails == {ada.pk: "", bob.pk: "bob@example.com"}
    assert log == [("customer", merchant.pk, ada.pk)]
    assert Customer.objects.get(pk=ada.pk).email == ""
    assert PointsTransaction.objects.count() == 3


def test_a_backup_cut_off_by_its_time_limit_leaves_no_file(tmp_path):
    class CutOff(io.RawIOBase):
        """A dump stream whose task hits its soft time limit after the first megabyte."""

        sent = False

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.sent:
                raise SoftTimeLimitExceeded()
            self.sent = True
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    storage = LocalDirectoryStorage(tmp_path)
    with pytest.raises(SoftTimeLimitExceeded):
        storage.put("20261121T020000Z.dump", CutOff())

    assert list(tmp_path.rglob("*")) == [] and storage.names() == []
