"""Klaviyo through its official SDK (`klaviyo-api`): one event per email notification.

The event carries `unique_id` = the notification id, so a resend after a crash is recorded
once by Klaviyo (E3); the merchant's Klaviyo flow triggered by the metric sends the email with
the rendered subject and body from the event's properties. The SDK's own retries are off:
attempts, backoff and the breaker are ours (apps.notifications.delivery).
"""

from functools import lru_cache

import urllib3
from django.conf import settings
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException

from .base import Credential, MissingCredential, OutboundMessage, ProviderError, error_for_status, timeouts

NAME = "klaviyo"


@lru_cache(maxsize=256)
def _client(api_key: str, base_url: str) -> KlaviyoAPI:
    # Building the SDK wraps every endpoint (~0.1 s): one client per key and process.
    return KlaviyoAPI(api_key, max_retries=0, test_host=base_url.rstrip("/"))


def metric_name(notification_type: str) -> str:
    """The Klaviyo metric a merchant's flow listens to, stable across locales."""
    return f"LoyalNest {notification_type}"


def event_body(message: OutboundMessage) -> dict:
    profile = {"email": message.email}
    if message.external_id:
        profile["external_id"] = message.external_id
    return {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {
                    **message.properties,
                    "subject": message.subject,
                    "body": message.text,
                    "body_html": message.html,
                    "locale": message.locale,
                    "direction": message.direction,
                    "notification_id": message.notification_id,
                },
                "metric": {"data": {"type": "metric", "attributes": {"name": metric_name(message.type)}}},
                "profile": {"data": {"type": "profile", "attributes": profile}},
                "unique_id": message.notification_id,
            },
        }
    }


class KlaviyoSender:
    name = NAME

    def credential(self, *, notification, merchant_settings) -> Credential:
        """Shoppers' emails go through the merchant's own Klaviyo; merchant-facing ones
        through LoyalNest's account."""
        if notification.customer_id is None:
            if not settings.NOTIFICATIONS_KLAVIYO_PRIVATE_KEY:
                raise MissingCredential(NAME)
            return Credential(settings.NOTIFICATIONS_KLAVIYO_PRIVATE_KEY, f"{NAME}:loyalnest")
        key = getattr(merchant_settings, "klaviyo_private_key", "")
        if not key:
            raise MissingCredential(NAME)
        return Credential(key, f"{NAME}:{notification.merchant_id}")

    def send(self, message: OutboundMessage, credential: Credential) -> str:
        client = _client(credential.secret, settings.NOTIFICATIONS_KLAVIYO_BASE_URL)
        try:
            client.Events.create_event(event_body(message), _request_timeout=timeouts())
        except ApiException as exc:
            raise error_for_status(NAME, exc.status or 0, exc.headers) from None
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderError(f"{NAME} unreachable ({type(exc).__name__})", retryable=True) from None
        # Klaviyo answers 202 without an id; the unique_id is the event's identity there.
        return message.notification_id
