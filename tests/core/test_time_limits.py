"""Time limits per workload queue (docs/OPERATIONS.md): every task has a soft and a hard limit,
soft < hard < the broker's visibility timeout, so a task is stopped before the broker would hand
its message to a second worker; the limits follow the route table and the environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from loyalnest.celery import app as celery_app
from tests.core.test_configuration import _check_deploy, _production_env

ROOT = Path(__file__).resolve().parents[2]


def _our_tasks() -> dict:
    celery_app.loader.import_default_modules()
    return {name: task for name, task in celery_app.tasks.items() if not name.startswith("celery.")}


def test_every_task_has_a_soft_limit_under_its_hard_limit_under_the_visibility_timeout():
    visibility = celery_app.conf.broker_transport_options["visibility_timeout"]
    tasks = _our_tasks()

    assert len(tasks) > 30
    limits = {name: (task.soft_time_limit, task.time_limit) for name, task in tasks.items()}
    assert {
        name for name, (soft, hard) in limits.items() if not (soft and hard and 0 < soft < hard < visibility)
    } == set()


def test_limits_come_from_the_task_queue_unless_the_task_has_its_own():
    tasks = _our_tasks()
    for name, task in tasks.items():
        queue = celery_app.amqp.router.route({}, name)["queue"].name
        expected = settings.CELERY_TASK_TIME_LIMITS.get(name, settings.CELERY_QUEUE_TIME_LIMITS[queue])
        assert (task.soft_time_limit, task.time_limit) == expected, name
    assert set(settings.CELERY_TASK_TIME_LIMITS) <= set(tasks)  # no stale name
    # The long jobs get more than their queue.
    for name in ("apps.rfm.tasks.rfm_nightly_task", "apps.backups.tasks.backup_nightly_task"):
        queue = celery_app.amqp.router.route({}, name)["queue"].name
        assert tasks[name].time_limit > settings.CELERY_QUEUE_TIME_LIMITS[queue][1]
    # Shorter than the notification lease: a send still running never has its rows handed out again.
    assert settings.CELERY_QUEUE_TIME_LIMITS["notifications"][1] < settings.NOTIFICATIONS_LEASE_SECONDS


def test_a_published_message_carries_no_time_limit_so_the_worker_applies_its_own():
    """Celery runs a message with the limits it carries over the worker's: the publisher's settings
    would win (tests/faults/test_time_limit_faults.py runs the worker's). The headers are read as
    they are published (`before_task_publish`): the suite's worker may take a message off the
    broker before the test could look at it."""
    from celery.signals import before_task_publish

    from apps.shopify.webhooks.tasks import webhook_inbox_drain_task

    published = []

    def capture(sender=None, headers=None, **kwargs):
        if sender == webhook_inbox_drain_task.name:
            published.append(headers["timelimit"])

    before_task_publish.connect(capture, weak=False)
    try:
        assert webhook_inbox_drain_task.time_limit  # the publisher has limits of its own
        webhook_inbox_drain_task.apply_async(kwargs={"merchant_id": "mer_x"})
        webhook_inbox_drain_task.apply_async(kwargs={"merchant_id": "mer_y"}, time_limit=9, soft_time_limit=5)
    finally:
        before_task_publish.disconnect(capture)

    assert [list(limits) for limits in published] == [
        [None, None],
        [9, 5],  # a caller's explicit limits are kept
    ]


def _limits_in_a_process(**env) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup()\n"
        "from loyalnest.celery import app\n"
        "app.loader.import_default_modules()\n"
        "task = app.tasks['apps.shopify.webhooks.tasks.webhook_inbox_drain_task']\n"
        "print(task.soft_time_limit, task.time_limit)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_queue_limits_are_set_from_the_environment():
    overridden = _limits_in_a_process(CELERY_TIME_LIMITS_SHOPIFY="30,45")

    assert overridden.returncode == 0, overridden.stderr[-2000:]
    assert overridden.stdout.split() == ["30.0", "45.0"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [
        {"CELERY_TIME_LIMITS_SHOPIFY": "300,4000"},  # hard past the visibility timeout (3600)
        {"CELERY_VISIBILITY_TIMEOUT": "600"},  # shorter than the backups' limits
        {"CELERY_TIME_LIMITS_ANALYTICS": "700,600"},  # soft after hard
    ],
    ids=["hard-past-visibility", "short-visibility", "soft-after-hard"],
)
def test_production_refuses_limits_the_broker_would_outlast(env):
    result = _check_deploy(_production_env(**env))

    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT" in result.stderr
