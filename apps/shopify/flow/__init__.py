"""Shopify Flow: triggers LoyalNest fires into merchants' workflows, and actions workflows call.

Triggers (`flow_trigger_fire`) go out after commit through a Celery task, as a
`flowTriggerReceive(handle:, payload:)` mutation. Actions arrive at
`POST /shopify/flow/actions/<handle>`, are verified (HMAC of the body with the app's secret) and
dispatched to the handler registered for the handle with `register_flow_action`.
"""

from .actions import (
    ACTION_AWARD_POINTS,
    FlowActionHandler,
    flow_action_get,
    flow_action_handles,
    register_flow_action,
)
from .triggers import (
    TRIGGER_TIER_CHANGED,
    TRIGGERS,
    flow_trigger_fire,
    flow_trigger_fire_task,
    flow_trigger_send,
)

__all__ = [
    "ACTION_AWARD_POINTS",
    "TRIGGERS",
    "TRIGGER_TIER_CHANGED",
    "FlowActionHandler",
    "flow_action_get",
    "flow_action_handles",
    "flow_trigger_fire",
    "flow_trigger_fire_task",
    "flow_trigger_send",
    "register_flow_action",
]
