"""Rewards bought with points, delivered as Shopify discount codes (see services.py)."""

from .selectors import reward_redemption_get, reward_redemption_list
from .services import (
    RedemptionIssueRetry,
    RewardNotRedeemableOnline,
    redemption_code_new,
    reward_redeem,
    reward_redemption_issue,
    reward_redemption_issue_in_request,
    reward_redemption_retry,
)

__all__ = [
    "RedemptionIssueRetry",
    "RewardNotRedeemableOnline",
    "redemption_code_new",
    "reward_redeem",
    "reward_redemption_get",
    "reward_redemption_issue",
    "reward_redemption_issue_in_request",
    "reward_redemption_list",
    "reward_redemption_retry",
]
