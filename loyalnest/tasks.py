"""The base class of every Celery task: poison messages end in a dead-letter list (RELIABILITY E1).

With `acks_late` and `reject_on_worker_lost`, a message whose task kills or hangs its worker is
handed out again after the broker's visibility timeout — forever, since Redis counts nothing.
Each delivery of a task attempt (task id + retry number) is counted in Redis; past
`CELERY_MAX_DELIVERIES` the attempt is not run again: it is logged, appended to the Redis list
`celery:dead-letter` (task name, id, retry number, kwargs — ids only, never payloads) and
acknowledged. Staff re-queue from there by hand. With Redis down the count is skipped (the task
runs: the broker is Redis too, so nothing could be delivered anyway).
"""

import json
import logging

import redis
from celery import Task
from django.conf import settings

logger = logging.getLogger(__name__)

DEAD_LETTER_KEY = "celery:dead-letter"
DELIVERY_COUNT_SECONDS = 7 * 24 * 3600


def _deliveries_key(task_id: str, retries: int) -> str:
    return f"celery:deliveries:{task_id}:{retries}"


class LoyalNestTask(Task):
    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, **options):
        # The time limits are the worker's (its CELERY_TIME_LIMITS_*, set on the task by
        # `TimeLimits`): a limit in the message would override them (celery.worker.request), so the
        # publisher's settings — web, beat, the worker of a retry — would decide, and a message
        # queued before a change would keep the old ones. Only an explicit caller's limit is sent.
        options.setdefault("time_limit", None)
        options.setdefault("soft_time_limit", None)
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, **options)

    def __call__(self, *args, **kwargs):
        request = self.request
        if request.id and not request.is_eager and self._poisoned(request, kwargs):
            return None
        return super().__call__(*args, **kwargs)

    def _poisoned(self, request, kwargs) -> bool:
        from apps.core.redis import get_redis

        try:
            client = get_redis()
            key = _deliveries_key(request.id, request.retries or 0)
            pipeline = client.pipeline(transaction=False)
            pipeline.incr(key)
            pipeline.expire(key, DELIVERY_COUNT_SECONDS)
            deliveries = pipeline.execute()[0]
            if deliveries <= settings.CELERY_MAX_DELIVERIES:
                return False
            client.rpush(
                DEAD_LETTER_KEY,
                json.dumps(
                    {
                        "task": self.name,
                        "id": request.id,
                        "retries": request.retries or 0,
                        "deliveries": deliveries,
                        "kwargs": {key: value for key, value in kwargs.items() if key.endswith(("_id", "_ids"))},
                    }
                ),
            )
        except redis.RedisError as exc:
            logger.warning("delivery count of %s skipped: %s", self.name, type(exc).__name__)
            return False
        logger.error(
            "task %s %s dead-lettered after %s deliveries of retry %s",
            self.name,
            request.id,
            deliveries,
            request.retries or 0,
        )
        return True


class TimeLimits:
    """Celery task annotation (`CELERY_TASK_ANNOTATIONS`): a task's soft and hard time limits are
    its own entry in `CELERY_TASK_TIME_LIMITS`, else those of the queue its route sends it to
    (`CELERY_QUEUE_TIME_LIMITS`). Limits written on a task's decorator are kept."""

    def annotate(self, task):
        if task.soft_time_limit is not None or task.time_limit is not None:
            return None
        limits = settings.CELERY_TASK_TIME_LIMITS.get(task.name)
        if limits is None:
            queue = task.app.amqp.router.route({}, task.name)["queue"].name
            limits = settings.CELERY_QUEUE_TIME_LIMITS.get(queue)
        if limits is None:
            return None
        soft, hard = limits
        return {"soft_time_limit": soft, "time_limit": hard}
