"""What every sender takes and raises."""

from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.utils import timezone


class ProviderError(Exception):
    """A provider call that did not succeed. `retryable`: whether another attempt can help
    (5xx, 429, timeouts, refused connections); `retry_after`: seconds the provider asked for."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None):
        self.reason = reason[:300]
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        super().__init__(self.reason)


class MissingCredential(ProviderError):
    """The merchant has not connected this provider: nothing to retry until they do."""

    def __init__(self, provider: str):
        super().__init__(f"{provider} is not connected", retryable=False)


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered notification, ready for one provider. Carries personal data: never log it."""

    notification_id: str
    merchant_id: str
    type: str
    locale: str
    direction: str
    subject: str
    text: str
    html: str
    email: str = ""
    phone: str = ""
    external_id: str = ""
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Credential:
    """Who we call the provider as: `breaker_key` names the circuit of this credential."""

    secret: str
    breaker_key: str
    extra: dict = field(default_factory=dict)


def timeouts() -> tuple[float, float]:
    return settings.NOTIFICATIONS_CONNECT_TIMEOUT_SECONDS, settings.NOTIFICATIONS_READ_TIMEOUT_SECONDS


def retry_after_seconds(value) -> float | None:
    """`Retry-After` as seconds (a number, or an HTTP date); None when absent or unreadable."""
    if value is None or value == "":
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        return max(0.0, (parsedate_to_datetime(str(value)) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def error_for_status(provider: str, status: int, headers) -> ProviderError:
    """E2: 429 and 5xx are worth retrying (honouring Retry-After); any other 4xx is not."""
    retry_after = retry_after_seconds((headers or {}).get("Retry-After") or (headers or {}).get("retry-after"))
    retryable = status == 429 or status >= 500
    return ProviderError(
        f"{provider} answered HTTP {status}", retryable=retryable, retry_after=retry_after, status=status
    )
