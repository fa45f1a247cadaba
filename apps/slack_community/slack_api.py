"""The LoyalNest Collective workspace's Web API through `slack-sdk`: look a member up and add
them to the community channels.

A narrow client: explicit timeouts, the base URL from settings (tests point it at a fake on
loopback), the SDK's own retry handlers off (attempts, `Retry-After` and the breaker are ours),
and one error type that says whether another try can help. Never logs tokens or member data.
"""

from dataclasses import dataclass
from urllib.error import URLError

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from apps.notifications.breakers import CircuitOpen, guarded_call
from apps.notifications.providers.base import ProviderError, retry_after_seconds, timeouts

PROVIDER = "slack"
BREAKER_KEY = "slack:community"

# Slack answers these with HTTP 200 and ok=false: the request's fault, another try is the same.
USER_ERRORS = frozenset({"user_not_found", "user_not_visible", "user_disabled", "cant_invite_self", "not_allowed"})


class SlackCommunityError(ProviderError):
    """A Web API call that failed. `error`: Slack's code (`user_not_found`, `ratelimited`,
    `slack_unavailable`, `circuit_open`, …)."""

    def __init__(self, error: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None):
        self.error = error
        super().__init__(f"slack {error}", retryable=retryable, retry_after=retry_after, status=status)


@dataclass(frozen=True)
class InviteOutcome:
    already_member: bool  # every channel answered `already_in_channel`
    channels: tuple[str, ...]


def _client(token: str) -> WebClient:
    return WebClient(
        token=token,
        base_url=settings.NOTIFICATIONS_SLACK_API_BASE_URL,
        timeout=int(max(1, timeouts()[1])),
        retry_handlers=[],
    )


def _call(method, **kwargs):
    """One Web API call through the Slack breakers; Slack's answer as a dict."""

    def attempt():
        try:
            return method(**kwargs).data
        except SlackApiError as exc:
            response = exc.response
            status = response.status_code
            error = str((response.data or {}).get("error", "")) if isinstance(response.data, dict) else ""
            if status == 429 or error == "ratelimited":
                retry_after = retry_after_seconds((response.headers or {}).get("Retry-After")) or retry_after_seconds(
                    (response.headers or {}).get("retry-after")
                )
                raise SlackCommunityError("ratelimited", retryable=True, retry_after=retry_after, status=429) from None
            if status >= 500:
                raise SlackCommunityError("slack_unavailable", retryable=True, status=status) from None
            # ok=false with a code: not Slack's outage, so it must not trip the breaker.
            raise SlackCommunityError(error or f"http_{status}", retryable=False, status=status) from None
        except (URLError, OSError, SlackRequestError):
            raise SlackCommunityError("slack_unavailable", retryable=True) from None

    try:
        return guarded_call(provider=PROVIDER, credential_key=BREAKER_KEY, call=attempt)
    except CircuitOpen:
        raise SlackCommunityError("circuit_open", retryable=True) from None


def community_configured() -> bool:
    return bool(settings.NOTIFICATIONS_SLACK_BOT_TOKEN and settings.SLACK_COMMUNITY_CHANNEL_IDS)


def member_lookup(slack_user_id: str) -> dict:
    """`users.info`: the member's profile flags (`deleted`, `is_bot`, `locale`)."""
    data = _call(_client(settings.NOTIFICATIONS_SLACK_BOT_TOKEN).users_info, user=slack_user_id, include_locale=True)
    return data.get("user") or {}


def member_invite(slack_user_id: str) -> InviteOutcome:
    """Add the member to every community channel: `admin.conversations.invite` when the
    workspace gave us an admin token (Enterprise Grid), else `conversations.invite` as the bot."""
    channels = tuple(settings.SLACK_COMMUNITY_CHANNEL_IDS)
    already = 0
    for channel in channels:
        try:
            if settings.SLACK_COMMUNITY_ADMIN_TOKEN:
                _call(
                    _client(settings.SLACK_COMMUNITY_ADMIN_TOKEN).admin_conversations_invite,
                    channel_id=channel,
                    user_ids=[slack_user_id],
                )
            else:
                _call(
                    _client(settings.NOTIFICATIONS_SLACK_BOT_TOKEN).conversations_invite,
                    channel=channel,
                    users=[slack_user_id],
                )
        except SlackCommunityError as exc:
            if exc.error != "already_in_channel":
                raise
            already += 1
    return InviteOutcome(already_member=bool(channels) and already == len(channels), channels=channels)
