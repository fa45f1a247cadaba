"""Shopify Flow: the action "award badge" (the seeds' "Purchase → Award Badge").

Triggers fired by `awarding` (after commit, one task per batch):

| handle                      | payload                                                          |
|-----------------------------|------------------------------------------------------------------|
| `loyalnest-badge-awarded`   | `customer_id`, `Badge id`, `Badge name` (English), `Streak count` |
| `loyalnest-streak-reached`  | `customer_id`, `Streak count`, `Streak period` (week or month)   |

Action `loyalnest-award-badge`, properties `customer_id` (Flow's customer reference) and
`badge_id`. Flow resends an action with the same `action_run_id` until it gets a 200; the
badge is awarded once per customer anyway (unique achievement), so a resend answers with the
achievement already held.
"""

from rest_framework import serializers

from apps.shopify.flow.actions import AwardPointsInput, flow_action_input

from .awarding import TRIGGER_BADGE_AWARDED, TRIGGER_STREAK_REACHED
from .services import badge_award

ACTION_AWARD_BADGE = "loyalnest-award-badge"
TRIGGERS = (TRIGGER_BADGE_AWARDED, TRIGGER_STREAK_REACHED)


class AwardBadgeInput(serializers.Serializer):
    """Flow's properties: `customer_id` (Flow's customer reference, as for "award points") and
    `badge_id`. Other properties Flow adds are ignored."""

    customer_id = serializers.CharField(max_length=64)
    badge_id = serializers.CharField(max_length=40)

    validate_customer_id = AwardPointsInput.validate_customer_id


def flow_award_badge(*, merchant, action_run_id: str, properties: dict) -> dict:
    """Award a badge from a workflow, once per customer and badge."""
    data, customer = flow_action_input(merchant=merchant, serializer_class=AwardBadgeInput, properties=properties)
    achievement, created = badge_award(
        merchant=merchant,
        customer=customer,
        badge_id=data["badge_id"].strip(),
        source="flow",
        extra={"action_run_id": action_run_id},
    )
    return {"achievement_id": achievement.pk, "badge_id": achievement.badge_definition_id, "created": created}
