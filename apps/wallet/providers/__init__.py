"""One client per wallet vendor: APNs (pass update pushes) and the Google Wallet REST API."""


class WalletProviderError(Exception):
    """A vendor call failed; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(value) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
