import json
import sys

from django.core.management.base import BaseCommand

from apps.backups.erasures import erasures_replay


class Command(BaseCommand):
    help = "Re-apply logged GDPR erasures (JSON list on stdin) to this database (run by backup_restore)."

    def handle(self, *args, **options):
        records = json.load(sys.stdin)
        self.stdout.write(f"re-applied {erasures_replay(records)} erasures")
