"""The Google Wallet REST API: patch a customer's loyalty object after a change.

Authenticates as the service account (OAuth 2.0 JWT bearer grant, scope
`wallet_object.issuer`), caches the access token until shortly before it expires.
"""

import threading
import time

import httpx
import jwt
from django.conf import settings

from ..passes.credentials import GoogleIssuer
from . import WalletProviderError, retry_after_seconds

SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_token_lock = threading.Lock()
_tokens: dict[str, tuple[str, float]] = {}


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(
        settings.WALLET_HTTP_READ_TIMEOUT_SECONDS, connect=settings.WALLET_HTTP_CONNECT_TIMEOUT_SECONDS
    )


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    retryable = response.status_code == 429 or response.status_code >= 500
    raise WalletProviderError(
        f"Google Wallet {what} answered {response.status_code}",
        retryable=retryable,
        status=response.status_code,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
    )


def access_token(issuer: GoogleIssuer, *, http: httpx.Client) -> str:
    with _token_lock:
        cached = _tokens.get(issuer.service_account_email)
        if cached and cached[1] > time.time() + 60:
            return cached[0]
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": issuer.service_account_email,
            "scope": SCOPE,
            "aud": settings.WALLET_GOOGLE_TOKEN_URL,
            "iat": now,
            "exp": now + 3600,
        },
        issuer.private_key,
        algorithm="RS256",
    )
    try:
        response = http.post(settings.WALLET_GOOGLE_TOKEN_URL, data={"grant_type": GRANT_TYPE, "assertion": assertion})
    except httpx.HTTPError as exc:
        raise WalletProviderError(f"Google token endpoint unreachable: {type(exc).__name__}", retryable=True) from exc
    _raise_for(response, "token endpoint")
    body = response.json()
    token = body["access_token"]
    with _token_lock:
        _tokens[issuer.service_account_email] = (token, now + int(body.get("expires_in", 3600)))
    return token


def loyalty_object_patch(issuer: GoogleIssuer, object_id: str, patch: dict) -> bool:
    """PATCH the loyalty object; False when the shopper has not saved it yet (404)."""
    with httpx.Client(timeout=_timeout()) as http:
        token = access_token(issuer, http=http)
        url = f"{settings.WALLET_GOOGLE_API_BASE_URL.rstrip('/')}/loyaltyObject/{object_id}"
        try:
            response = http.patch(url, json=patch, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise WalletProviderError(f"Google Wallet unreachable: {type(exc).__name__}", retryable=True) from exc
        if response.status_code == 404:
            return False
        _raise_for(response, "loyaltyObject.patch")
        return True
