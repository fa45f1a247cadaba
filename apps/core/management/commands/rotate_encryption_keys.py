"""Re-encrypt every encrypted column under the primary key of ENCRYPTION_KEYS (D5).

Rotation: put the new key first (`new:<base64>,old:<base64>`), deploy, run this command, then
drop the old key. Safe to re-run, and to run while the app serves traffic:

- rows are read in primary-key batches straight from the table (the field would decrypt them);
- values already under the primary key are left alone;
- each value is written back only if the column still holds the ciphertext that was read
  (`UPDATE … WHERE pk = %s AND column = %s`). A value the app rewrote meanwhile — a refreshed
  Shopify token, say — was already encrypted with the primary key and is not overwritten.
  This compare-and-set needs no row lock, so it works the same on PostgreSQL and on SQLite
  (which has no SELECT … FOR UPDATE), and no lock is held while decrypting.

A value that fails to decrypt (altered, or its key is no longer listed) stops the command with
the table, column and row id; no plaintext is ever printed.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from apps.core.crypto import DecryptionError, decrypt, encrypt, encrypted_fields, key_id_of, primary_key_id


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column under the first key of ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows read and updated per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be re-encrypted; change nothing.")

    def handle(self, *args, batch_size: int, dry_run: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        primary = primary_key_id()
        total = 0
        for model, field in encrypted_fields():
            rotated, current = self._rotate(model, field, primary=primary, batch_size=batch_size, dry_run=dry_run)
            total += rotated
            verb = "to re-encrypt" if dry_run else "re-encrypted"
            self.stdout.write(
                f"{model._meta.db_table}.{field.column}: {rotated} {verb}, {current} already on key {primary!r}"
            )
        summary = f"{total} values {'to re-encrypt' if dry_run else 're-encrypted'} under key {primary!r}."
        self.stdout.write(self.style.SUCCESS(summary))

    def _rotate(self, model, field, *, primary: str, batch_size: int, dry_run: bool) -> tuple[int, int]:
        quote = connection.ops.quote_name
        table, pk, column = quote(model._meta.db_table), quote(model._meta.pk.column), quote(field.column)
        select = (
            f"SELECT {pk}, {column} FROM {table} "  # noqa: S608  (identifiers from the model, quoted)
            f"WHERE {pk} > %s AND {column} IS NOT NULL AND {column} <> '' ORDER BY {pk} LIMIT %s"
        )
        update = f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s"  # noqa: S608
        rotated = current = 0
        last_pk = ""
        if model._meta.pk.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField"):
            last_pk = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(select, [last_pk, batch_size])
                rows = cursor.fetchall()
                for row_pk, ciphertext in rows:
                    try:
                        if key_id_of(ciphertext) == primary:
                            current += 1
                            continue
                        plaintext = decrypt(ciphertext)
                    except (DecryptionError, ValueError) as exc:
                        raise CommandError(
                            f"{model._meta.db_table}.{field.column} of row {row_pk} does not decrypt "
                            f"({exc.__class__.__name__}); nothing was written for it."
                        ) from exc
                    if not dry_run:
                        cursor.execute(update, [encrypt(plaintext), row_pk, ciphertext])
                    rotated += 1
            if len(rows) < batch_size:
                return rotated, current
            last_pk = rows[-1][0]
