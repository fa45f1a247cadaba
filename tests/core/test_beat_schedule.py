"""Beat covers every periodic job: each sweep and fan-out task is scheduled, and every schedule
entry is documented in docs/OPERATIONS.md (the beat table operators read)."""

import inspect
import re
from pathlib import Path

from django.conf import settings

from loyalnest.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def _takes_no_arguments(task) -> bool:
    parameters = inspect.signature(task.run).parameters.values()
    return not [p for p in parameters if p.default is p.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def test_every_task_beat_could_run_is_on_the_beat_schedule():
    """A task that needs no arguments is a sweep or a fan-out over all shops: nothing but beat
    starts it, so it must be scheduled (per-shop tasks need a merchant or group id)."""
    celery_app.loader.import_default_modules()
    periodic = {
        name for name, task in celery_app.tasks.items() if name.startswith("apps.") and _takes_no_arguments(task)
    }
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert len(periodic) >= 10
    assert periodic - scheduled == set()
    assert scheduled <= periodic  # beat passes no argument a task would need (kwargs entries aside)


def test_every_beat_entry_is_in_the_operations_beat_table():
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    table = text[text.index("### Beat jobs") :]
    documented = set(re.findall(r"^\| `([a-z0-9*-]+)` \|", table, flags=re.MULTILINE))

    missing = {
        key
        for key in settings.CELERY_BEAT_SCHEDULE
        if key not in documented and not any(d.endswith("*") and key.startswith(d[:-1]) for d in documented)
    }
    assert missing == set()
