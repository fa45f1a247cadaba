from django.core.management.base import BaseCommand, CommandError

from apps.backups.crypto import BackupDecryptionError
from apps.backups.service import BackupError, backup_drill


class Command(BaseCommand):
    help = "Restore the latest backup into a scratch database and compare it with its manifest."

    def add_arguments(self, parser):
        parser.add_argument("--name", help="backup name (default: the latest)")

    def handle(self, *args, **options):
        try:
            result = backup_drill(name=options["name"])
        except (BackupError, BackupDecryptionError) as exc:
            raise CommandError(f"RESTORE DRILL FAILED: {exc}") from exc
        self.stdout.write(f"restore drill of {result['name']} passed: {result['tables']} tables")
