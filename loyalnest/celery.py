"""Celery application: acks late, requeue on worker loss, one message prefetched at a time, and
poison messages dead-lettered after `CELERY_MAX_DELIVERIES` deliveries (`loyalnest.tasks`)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalnest.settings.dev")

app = Celery("loyalnest", task_cls="loyalnest.tasks:LoyalNestTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
