"""POST /shopify/webhooks — one URL for every topic; the topic comes from the header.

Order of checks (RELIABILITY A1, A2, A3, E5, E6):
1. HMAC-SHA256 of the raw body, base64, constant time, with the client secret or the previous
   one (shopifyapp's `verify_webhook_req`, which reads `X-Shopify-Hmac-Sha256` and the newer
   `shopify-hmac-sha256`) — before anything parses the body. Missing or wrong → 401.
2. The shop from the verified request's shop header → 404 when LoyalNest does not know it.
3. Store one inbox row per webhook id — one `INSERT … ON CONFLICT DO NOTHING` in autocommit (a
   duplicate → 200, no second row). A body that is not JSON → 400, stored `failed` with the reason.
4. Ask for the merchant's inbox to be drained: one Redis `SET NX`; only the first delivery of a
   burst publishes the drain task (the worker then takes the deliveries in batches). Redis or
   the broker being down does not fail the request: the row is safe and the beat sweep queues
   it. The database being down does: 503, Shopify retries.

The shop → merchant lookup is kept per process for 30 s (`..shops`; a shop erased meanwhile makes
the insert fail its foreign key: 404, and the entry is dropped).
"""

import base64
import hashlib
import hmac
import logging

from django.conf import settings
from django.db import DatabaseError, IntegrityError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from shopify_app import verify_webhook_req

from ..auth import SHOP_HOST
from ..shops import shops
from .inbox import DeliveryHeaders, parse_triggered_at, webhook_delivery_receive
from .tasks import inbox_drain_request

logger = logging.getLogger(__name__)


def _header(request, name: str) -> str:
    """`X-Shopify-<Name>` or the newer un-prefixed `shopify-<name>`."""
    key = name.upper().replace("-", "_")
    return (request.META.get(f"HTTP_X_SHOPIFY_{key}") or request.META.get(f"HTTP_SHOPIFY_{key}") or "").strip()


def _secrets() -> list[str]:
    return [s for s in (settings.SHOPIFY_API_SECRET, settings.SHOPIFY_API_SECRET_PREVIOUS) if s]


def _read_body(request) -> bytes | None:
    """The raw body, read from the stream (DATA_UPLOAD_MAX_MEMORY_SIZE is the API's limit,
    smaller than a large order's payload). None when it is over the webhook limit."""
    limit = settings.SHOPIFY_WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _hmac_valid(request, raw_body: bytes) -> bool:
    secrets = _secrets()
    if not secrets:
        return False
    headers = {
        name: request.META.get(f"HTTP_{name.upper().replace('-', '_')}", "")
        for name in ("X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256", "X-Shopify-Shop-Domain", "Shopify-Shop-Domain")
    }
    headers = {name: value for name, value in headers.items() if value}
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        # shopifyapp signs text; Shopify always sends UTF-8. Bytes that are not UTF-8 are
        # checked here directly (still constant time) so they can be refused or stored failed.
        received = _header(request, "Hmac-Sha256").encode()
        return any(
            hmac.compare_digest(received, base64.b64encode(hmac.new(s.encode(), raw_body, hashlib.sha256).digest()))
            for s in secrets
        )
    result = verify_webhook_req(
        {"method": "POST", "headers": headers, "url": request.build_absolute_uri(), "body": text},
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": secrets[0],
            "old_client_secret": secrets[1] if len(secrets) > 1 else None,
        },
    )
    return result.ok


def _plain(status: int, text: str = "") -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
def webhook_receive(request):
    if request.method != "POST":
        response = _plain(405)
        response["Allow"] = "POST"
        return response
    raw_body = _read_body(request)
    if raw_body is None:
        return _plain(413)
    if not _hmac_valid(request, raw_body):
        return _plain(401)
    shop_domain = _header(request, "Shop-Domain").lower()
    topic = _header(request, "Topic").lower()
    if not topic:
        return _plain(400)
    try:
        merchant = shops.merchant(shop_domain) if SHOP_HOST.match(shop_domain) else None
        if merchant is None:
            return _plain(404)
        merchant_id = merchant.pk
        received = webhook_delivery_receive(
            merchant_id=merchant_id,
            headers=DeliveryHeaders(
                topic=topic,
                webhook_id=_header(request, "Webhook-Id"),
                event_id=_header(request, "Event-Id"),
                triggered_at=parse_triggered_at(_header(request, "Triggered-At")),
                api_version=_header(request, "Api-Version"),
            ),
            raw_body=raw_body,
        )
    except IntegrityError:
        # The merchant row is gone (shop/redact) since this process looked it up.
        shops.forget(shop_domain)
        return _plain(404)
    except DatabaseError as exc:
        # Never 200-and-drop: Shopify retries a 5xx for up to 48 hours (E6).
        logger.error("webhook not stored, database unavailable: %s", type(exc).__name__)
        return _plain(503)
    if received.malformed:
        return _plain(400)
    if received.pending:
        inbox_drain_request(merchant_id=merchant_id)
    return _plain(200)
