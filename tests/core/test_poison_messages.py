"""Poison messages: a task attempt delivered too often is dead-lettered, not run again (E1)."""

import json

import pytest

from apps.core.redis import get_redis
from apps.core.tasks import idempotency_records_purge_task
from loyalnest.tasks import DEAD_LETTER_KEY, LoyalNestTask

pytestmark = pytest.mark.django_db


def _deliver(task, *, task_id: str, retries: int = 0, **kwargs):
    """What a worker does with one delivery of a message: run the task in its request context."""
    task.push_request(id=task_id, retries=retries, is_eager=False)
    try:
        return task(**kwargs)
    finally:
        task.pop_request()


def test_every_task_is_a_loyalnest_task():
    from loyalnest.celery import app

    project_tasks = [task for name, task in app.tasks.items() if name.startswith(("apps.", "loyalnest."))]
    assert project_tasks and all(isinstance(task, LoyalNestTask) for task in project_tasks)


def test_a_message_delivered_too_often_is_dead_lettered_once_past_the_limit(settings):
    settings.CELERY_MAX_DELIVERIES = 3

    results = [_deliver(idempotency_records_purge_task, task_id="poison-1") for _ in range(5)]

    assert results[:3] == [0, 0, 0]  # ran (nothing to purge)
    assert results[3:] == [None, None]  # not run again
    letters = [json.loads(raw) for raw in get_redis().lrange(DEAD_LETTER_KEY, 0, -1)]
    assert [(letter["task"], letter["id"], letter["deliveries"]) for letter in letters] == [
        (idempotency_records_purge_task.name, "poison-1", 4),
        (idempotency_records_purge_task.name, "poison-1", 5),
    ]


def test_retries_and_other_messages_have_their_own_count(settings):
    settings.CELERY_MAX_DELIVERIES = 1

    assert _deliver(idempotency_records_purge_task, task_id="a") == 0
    assert _deliver(idempotency_records_purge_task, task_id="a", retries=1) == 0  # a retry: new attempt
    assert _deliver(idempotency_records_purge_task, task_id="b") == 0
    assert _deliver(idempotency_records_purge_task, task_id="a") is None  # attempt 0 again: poison
    assert get_redis().llen(DEAD_LETTER_KEY) == 1


def test_direct_and_eager_calls_are_not_counted(settings):
    settings.CELERY_MAX_DELIVERIES = 1
    for _ in range(3):
        assert idempotency_records_purge_task() == 0
        assert idempotency_records_purge_task.apply(task_id="eager").get() == 0
    assert get_redis().llen(DEAD_LETTER_KEY) == 0
