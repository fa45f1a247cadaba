"""Slack through `slack-sdk`: the merchant's incoming webhook, or the LoyalNest Collective
workspace's Web API (`chat.postMessage`) for merchants who gave a channel instead.

Merchants save `https://hooks.slack.com/…` URLs only (D4, checked when saved); the sender keeps
the path and posts to the configured base, so tests point it at a fake on loopback. The SDK's
own retry handlers are off: attempts and the breaker are ours.
"""

from urllib.error import URLError
from urllib.parse import urlsplit

from django.conf import settings
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from .base import Credential, MissingCredential, OutboundMessage, ProviderError, error_for_status, timeouts

NAME = "slack"
WEBHOOK_HOST = "hooks.slack.com"


def webhook_url_is_allowed(url: str) -> bool:
    """D4: https, host exactly hooks.slack.com, default port, a /services/ path, no credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.hostname == WEBHOOK_HOST
        and port in (None, 443)
        and not parts.username
        and not parts.password
        and parts.path.startswith("/services/")
        and not parts.query
        and not parts.fragment
    )


def _webhook_target(url: str) -> str:
    return settings.NOTIFICATIONS_SLACK_WEBHOOK_BASE_URL.rstrip("/") + urlsplit(url).path


def message_text(message: OutboundMessage) -> str:
    return f"*{message.subject}*\n{message.text}"


class SlackSender:
    name = NAME

    def credential(self, *, notification, merchant_settings) -> Credential:
        webhook = getattr(merchant_settings, "slack_webhook_url", "")
        if webhook:
            return Credential(webhook, f"{NAME}:{notification.merchant_id}", {"kind": "webhook"})
        channel = getattr(merchant_settings, "slack_channel_id", "")
        if channel and settings.NOTIFICATIONS_SLACK_BOT_TOKEN:
            return Credential(
                settings.NOTIFICATIONS_SLACK_BOT_TOKEN, f"{NAME}:loyalnest", {"kind": "web_api", "channel": channel}
            )
        raise MissingCredential(NAME)

    def send(self, message: OutboundMessage, credential: Credential) -> str:
        if credential.extra.get("kind") == "web_api":
            return self._post_message(message, credential)
        return self._post_webhook(message, credential)

    def _post_webhook(self, message: OutboundMessage, credential: Credential) -> str:
        if not webhook_url_is_allowed(credential.secret):
            raise ProviderError("slack webhook URL is not a hooks.slack.com URL", retryable=False)
        client = WebhookClient(_webhook_target(credential.secret), timeout=timeouts()[1], retry_handlers=[])
        try:
            response = client.send(text=message_text(message), unfurl_links=False, unfurl_media=False)
        except (URLError, OSError, SlackRequestError) as exc:
            raise ProviderError(f"{NAME} unreachable ({type(exc).__name__})", retryable=True) from None
        if response.status_code >= 300:
            raise error_for_status(NAME, response.status_code, response.headers)
        return ""

    def _post_message(self, message: OutboundMessage, credential: Credential) -> str:
        client = WebClient(
            token=credential.secret,
            base_url=settings.NOTIFICATIONS_SLACK_API_BASE_URL,
            timeout=timeouts()[1],
            retry_handlers=[],
        )
        try:
            response = client.chat_postMessage(
                channel=credential.extra["channel"], text=message_text(message), unfurl_links=False
            )
        except SlackApiError as exc:
            status = exc.response.status_code
            if status >= 300:
                raise error_for_status(NAME, status, exc.response.headers) from None
            # HTTP 200 with ok=false: a bad channel or token; another try gives the same answer.
            raise ProviderError(f"{NAME} refused: {exc.response.get('error', 'error')}", retryable=False) from None
        except (URLError, OSError, SlackRequestError) as exc:
            raise ProviderError(f"{NAME} unreachable ({type(exc).__name__})", retryable=True) from None
        return str(response.get("ts") or "")[:128]
