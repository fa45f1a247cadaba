"""Postscript SMS through its v2 API (`POST /api/v2/message_requests`), with httpx.

Only shoppers with Shopify SMS marketing consent and a phone get here (the delivery checks).
"""

from functools import lru_cache

import httpx
from django.conf import settings

from .base import Credential, MissingCredential, OutboundMessage, ProviderError, error_for_status, timeouts

NAME = "postscript"


@lru_cache(maxsize=4)
def _http(connect: float, read: float) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(read, connect=connect), follow_redirects=False)


class PostscriptSender:
    name = NAME

    def credential(self, *, notification, merchant_settings) -> Credential:
        key = getattr(merchant_settings, "postscript_api_key", "")
        if not key:
            raise MissingCredential(NAME)
        return Credential(key, f"{NAME}:{notification.merchant_id}")

    def send(self, message: OutboundMessage, credential: Credential) -> str:
        url = f"{settings.NOTIFICATIONS_POSTSCRIPT_BASE_URL.rstrip('/')}/api/v2/message_requests"
        try:
            response = _http(*timeouts()).post(
                url,
                json={"phone": message.phone, "body": message.text, "category": "promotional"},
                headers={"Authorization": f"Bearer {credential.secret}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"{NAME} unreachable ({type(exc).__name__})", retryable=True) from None
        if response.status_code >= 300:
            raise error_for_status(NAME, response.status_code, response.headers)
        try:
            return str(response.json().get("id") or "")[:128]
        except ValueError:
            return ""
