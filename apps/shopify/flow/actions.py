"""Flow actions: the registry of handles LoyalNest answers, and the core's own action.

A handler is called as `handler(merchant=…, action_run_id=…, properties=…)` inside the
merchant's scope, after the request was verified, and returns a dict of fields for the
answer (Flow's `return_value`, if the action declares one). It raises ApplicationError
subclasses for refusals (ValidationFailed → 400, NotFound → 404, …). Flow resends an action
with the same `action_run_id` until it gets a 200, so a handler must be idempotent by it.

Features register theirs when Django starts (their `AppConfig.ready`):

    from apps.shopify.flow import register_flow_action
    register_flow_action("loyalnest-award-badge", badge_award_from_flow)
"""

import re
from collections.abc import Callable

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.core.errors import NotFound, ValidationFailed
from apps.core.models import Customer
from apps.core.services.ledger import MAX_POINTS_PER_ENTRY, points_earn

FlowActionHandler = Callable[..., dict]

HANDLE = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")
_ACTIONS: dict[str, FlowActionHandler] = {}


def register_flow_action(handle: str, handler: FlowActionHandler) -> None:
    """Answer Flow's `handle` with `handler`. Registering another handler for a taken handle fails."""
    if not HANDLE.match(handle or ""):
        raise ValueError("a Flow action handle is 1-30 lowercase letters, digits and hyphens")
    if _ACTIONS.get(handle, handler) is not handler:
        raise ValueError(f"the Flow action {handle!r} is already registered")
    _ACTIONS[handle] = handler


def flow_action_get(handle: str) -> FlowActionHandler | None:
    return _ACTIONS.get(handle)


def flow_action_handles() -> list[str]:
    return sorted(_ACTIONS)


# --- the core's action: award points -----------------------------------------------------------

ACTION_AWARD_POINTS = "loyalnest-award-points"
CUSTOMER_REFERENCE = re.compile(r"^(?:gid://shopify/Customer/)?(\d{1,20})$")


class AwardPointsInput(serializers.Serializer):
    """Flow's properties: `customer_id` (Flow's customer reference), `points`, optional `reason`.
    Other properties Flow adds (such as a step reference) are ignored."""

    customer_id = serializers.CharField(max_length=64)
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS_PER_ENTRY)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate_customer_id(self, value):
        match = CUSTOMER_REFERENCE.match(value.strip())
        if not match:
            raise serializers.ValidationError(_("Enter a Shopify customer id."))
        return match.group(1)


def flow_action_input(*, merchant, serializer_class, properties: dict) -> tuple[dict, Customer]:
    """Validate an action's properties (a serializer with a `customer_id` field) and find the
    customer they name: 400 for bad input, 404 for a customer the shop does not have."""
    serializer = serializer_class(data=properties)
    if not serializer.is_valid():
        raise ValidationFailed(details={key: [str(m) for m in msgs] for key, msgs in serializer.errors.items()})
    data = serializer.validated_data
    customer = Customer.objects.filter(
        merchant=merchant, shopify_customer_id=data["customer_id"], redacted_at__isnull=True
    ).first()
    if customer is None:
        raise NotFound(_("Customer not found."))
    return data, customer


def flow_award_points(*, merchant, action_run_id: str, properties: dict) -> dict:
    """Credit points from a workflow; Flow's action run id is the idempotency key, so a resent
    action credits once."""
    data, customer = flow_action_input(merchant=merchant, serializer_class=AwardPointsInput, properties=properties)
    result = points_earn(
        merchant=merchant,
        customer=customer,
        points=data["points"],
        idempotency_key=f"flow:{action_run_id}",
        reason=data["reason"] or "Shopify Flow",
        metadata={"source": "shopify_flow", "action_run_id": action_run_id},
    )
    return {"points_balance": result.balance, "transaction_id": result.transaction.pk, "created": result.created}


register_flow_action(ACTION_AWARD_POINTS, flow_award_points)
