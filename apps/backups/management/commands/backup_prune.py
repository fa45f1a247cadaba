from django.core.management.base import BaseCommand

from apps.backups.service import backup_prune


class Command(BaseCommand):
    help = "Delete backups older than BACKUP_KEEP_DAYS (by the date in their name)."

    def handle(self, *args, **options):
        for name in backup_prune():
            self.stdout.write(f"deleted {name}")
