from celery import shared_task

from .service import backup_create, backup_drill, backup_prune


@shared_task(acks_late=True)
def backup_nightly_task() -> str:
    manifest = backup_create()
    backup_prune()
    return manifest["name"]


@shared_task(acks_late=True)
def backup_drill_task() -> dict:
    return backup_drill()
