"""Celery application: acks late, requeue on worker loss, one message prefetched at a time."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalnest.settings.dev")

app = Celery("loyalnest")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
