"""Fixtures of the gamification tests: staff with and without admin:gamification, badges,
teams, and helpers that read what was queued after commit."""

import base64
import json

import pytest

from apps.gamification.models import Badge, Team
from tests.celery_queues import queued_raw
from tests.factories import StaffMemberFactory


@pytest.fixture
def gamifier(merchant):
    """A staff member holding admin:gamification (a marketer)."""
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90021", role="marketer")


@pytest.fixture
def support(merchant):
    """A staff member without admin:gamification."""
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90022", role="support")


def make_badge(merchant, rule, *, name=None, icon="star", is_active=True) -> Badge:
    return Badge.objects.create(
        merchant=merchant, name=name or {"en": f"Badge {rule['type']}"}, icon=icon, rule=rule, is_active=is_active
    )


def make_team(merchant, cycle, name="Team", is_open=True) -> Team:
    from apps.core.tenancy import merchant_scope
    from apps.gamification.services import team_create

    with merchant_scope(merchant):
        return team_create(merchant=merchant, actor=None, name={"en": name}, cycle=cycle, is_open=is_open)


def queued_tasks(name: str) -> list[dict]:
    """kwargs of every queued Celery message of task `name`, oldest first (the test broker is Redis)."""
    found = []
    for raw in reversed(queued_raw()):  # LPUSHed: newest first
        message = json.loads(raw)
        if message["headers"]["task"] == name:
            _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            found.append(kwargs)
    return found


def flow_triggers() -> list[tuple[str, dict]]:
    """Every Flow trigger queued by gamification, in order."""
    return [
        (handle, payload)
        for kwargs in queued_tasks("apps.gamification.awarding.gamification_flow_triggers_task")
        for handle, payload in kwargs["triggers"]
    ]
