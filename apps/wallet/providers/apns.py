"""APNs for Wallet: an empty push tells a device to fetch the pass's latest version.

HTTP/2 with token authentication (an ES256 JWT from the .p8 key, reused for 40 minutes: Apple
refuses tokens older than an hour and throttles ones renewed more often than every 20 minutes).
The topic is the Pass Type ID. A base URL of `http://` speaks HTTP/2 without TLS (prior
knowledge), which is what the local fake in the tests serves.
"""

import logging
import re
import threading
import time

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings

from ..passes.credentials import WalletNotConfigured, pem_bytes
from . import WalletProviderError, retry_after_seconds

TOKEN_LIFETIME_SECONDS = 40 * 60
# Device tokens APNs no longer accepts: drop the registration, never retry.
GONE_REASONS = frozenset({"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"})


_DEVICE_PATH = re.compile(r"/3/device/[^\s\"'?]+")


class _RedactDeviceTokens(logging.Filter):
    """httpx logs every request URL at INFO; a device token is personal data (D7): redact it."""

    def filter(self, record):
        if isinstance(record.args, tuple) and any("/3/device/" in str(arg) for arg in record.args):
            record.args = tuple(
                _DEVICE_PATH.sub("/3/device/[redacted]", str(arg)) if "/3/device/" in str(arg) else arg
                for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_RedactDeviceTokens())


class ApnsDeviceGone(WalletProviderError):
    def __init__(self, reason: str):
        super().__init__(f"device token refused: {reason}", retryable=False, status=410)


class ApnsClient:
    """Send pass-update pushes; one client (and one HTTP/2 connection) per process."""

    def __init__(self, *, base_url: str, key_id: str, team_id: str, key_pem: bytes, topic: str, timeout: httpx.Timeout):
        self.topic = topic
        self._key_id, self._team_id = key_id, team_id
        self._key = load_pem_private_key(key_pem, password=None)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        plain = base_url.startswith("http://")
        self._http = httpx.Client(base_url=base_url, http1=not plain, http2=True, timeout=timeout)

    def provider_token(self) -> str:
        with self._lock:
            now = time.time()
            if self._token is None or now - self._token[1] > TOKEN_LIFETIME_SECONDS:
                token = jwt.encode(
                    {"iss": self._team_id, "iat": int(now)}, self._key, algorithm="ES256", headers={"kid": self._key_id}
                )
                self._token = (token, now)
            return self._token[0]

    def push(self, device_token: str) -> None:
        """Tell one device its pass changed. Raises ApnsDeviceGone or WalletProviderError."""
        try:
            response = self._http.post(
                f"/3/device/{device_token}",
                content=b"{}",
                headers={
                    "authorization": f"bearer {self.provider_token()}",
                    "apns-topic": self.topic,
                    "apns-push-type": "background",
                    "apns-priority": "5",
                },
            )
        except httpx.HTTPError as exc:
            raise WalletProviderError(f"APNs unreachable: {type(exc).__name__}", retryable=True) from exc
        if response.status_code == 200:
            return
        try:
            reason = response.json().get("reason", "")
        except ValueError:
            reason = ""
        if reason in GONE_REASONS or response.status_code == 410:
            raise ApnsDeviceGone(reason or "Unregistered")
        retryable = response.status_code == 429 or response.status_code >= 500 or reason == "ExpiredProviderToken"
        if reason == "ExpiredProviderToken":
            self._token = None
        raise WalletProviderError(
            f"APNs answered {response.status_code} {reason}".strip(),
            retryable=retryable,
            status=response.status_code,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )

    def close(self):
        self._http.close()


_clients: dict[tuple, ApnsClient] = {}


def apns_client() -> ApnsClient:
    """The process's APNs client for the configured key (WalletNotConfigured when unset)."""
    if not settings.WALLET_APNS_KEY_ID or not settings.WALLET_APNS_KEY or not settings.WALLET_APPLE_PASS_TYPE_ID:
        raise WalletNotConfigured()
    config = (
        settings.WALLET_APNS_BASE_URL,
        settings.WALLET_APNS_KEY_ID,
        settings.WALLET_APPLE_TEAM_ID,
        settings.WALLET_APNS_KEY,
        settings.WALLET_APPLE_PASS_TYPE_ID,
    )
    client = _clients.get(config)
    if client is None:
        client = _clients[config] = ApnsClient(
            base_url=config[0],
            key_id=config[1],
            team_id=config[2],
            key_pem=pem_bytes(config[3]),
            topic=config[4],
            timeout=httpx.Timeout(
                settings.WALLET_HTTP_READ_TIMEOUT_SECONDS, connect=settings.WALLET_HTTP_CONNECT_TIMEOUT_SECONDS
            ),
        )
    return client
