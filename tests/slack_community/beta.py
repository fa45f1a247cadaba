"""Switch LoyalNest Collective beta flags on for a store in other apps' tests (the row the
merchant page's switches write: one community member carrying the store's flags)."""

import secrets

from apps.core.tenancy import merchant_scope
from apps.slack_community.models import SlackCommunityMember


def beta_on(merchant, *keys: str) -> SlackCommunityMember:
    with merchant_scope(merchant):
        return SlackCommunityMember.objects.create(
            merchant=merchant,
            slack_user_id="U0" + secrets.token_hex(5).upper(),
            status="active",
            beta_features=dict.fromkeys(keys, True),
        )
