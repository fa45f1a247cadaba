"""Short-lived signed pass URLs (Django signing: HMAC-SHA256 over the export id, timestamped).

The URL names an export, not a file: the pass is built when it is fetched. Expired or altered
tokens are refused with 403."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "apps.wallet.pass_url"


def pass_token_make(*, merchant_id: str, export_id: str) -> str:
    return signing.dumps({"m": merchant_id, "e": export_id}, salt=SALT, compress=False)


def pass_token_read(token: str) -> tuple[str, str]:
    """(merchant id, export id) of a valid token; `signing.BadSignature` (incl. expired) otherwise."""
    data = signing.loads(token, salt=SALT, max_age=settings.WALLET_PASS_URL_TTL_SECONDS)
    if not isinstance(data, dict) or not isinstance(data.get("m"), str) or not isinstance(data.get("e"), str):
        raise signing.BadSignature("unexpected payload")
    return data["m"], data["e"]


def public_url(path: str) -> str:
    return settings.WALLET_PUBLIC_URL.rstrip("/") + path


def pass_url_make(*, merchant_id: str, export_id: str) -> str:
    token = pass_token_make(merchant_id=merchant_id, export_id=export_id)
    return public_url(reverse("wallet_public:pass", kwargs={"token": token}))


def web_service_url() -> str:
    """PassKit's webServiceURL: devices append `/v1/devices/…`, `/v1/passes/…`, `/v1/log`."""
    return public_url("/wallet/passkit")


def logo_url(merchant_id: str) -> str:
    return public_url(reverse("wallet_public:logo", kwargs={"merchant_id": merchant_id}))
