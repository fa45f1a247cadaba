from django.core.management.base import BaseCommand, CommandError

from apps.backups.crypto import BackupDecryptionError
from apps.backups.service import BackupError, backup_latest, backup_restore
from apps.backups.storage import backup_storage


class Command(BaseCommand):
    help = "Restore a backup (default: the latest) into an existing empty database, then re-apply GDPR erasures."

    def add_arguments(self, parser):
        parser.add_argument("--target", required=True, help="database name on the default server")
        parser.add_argument("--name", help="backup name, e.g. db-20261102T020000Z")

    def handle(self, *args, **options):
        storage = backup_storage()
        try:
            name = options["name"] or backup_latest(storage)
            backup_restore(name=name, target=options["target"], storage=storage)
        except (BackupError, BackupDecryptionError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"restored {name} into {options['target']}")
