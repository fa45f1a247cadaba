"""The Slack Events API endpoint (`POST /slack/events`) of the LoyalNest Collective app.

Every request is verified before its body is parsed: `X-Slack-Signature` is
`v0=` + hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` under the signing
secret, compared in constant time, and the timestamp must be within 5 minutes (replays are
refused) — slack-sdk's `SignatureVerifier` does both. Unsigned or mis-signed → 401, nothing read.

`member_joined_channel` / `member_left_channel` in a community channel mark the member
`active` / `inactive`. Slack retries a delivery it did not see answered; applying one twice
changes nothing.
"""

import json
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_sdk.signature import SignatureVerifier

from . import services

logger = logging.getLogger(__name__)

MEMBER_EVENTS = {"member_joined_channel": True, "member_left_channel": False}


def signature_valid(request) -> bool:
    secret = settings.SLACK_COMMUNITY_SIGNING_SECRET
    if not secret:
        return False
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return False
    return SignatureVerifier(secret).is_valid(body=request.body, timestamp=timestamp, signature=signature)


@csrf_exempt
@require_POST
def slack_events(request):
    if not signature_valid(request):
        return JsonResponse({"ok": False, "error": "invalid_signature"}, status=401)
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"ok": False, "error": "invalid_payload"}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"ok": False, "error": "invalid_payload"}, status=400)
    if payload.get("type") == "url_verification":
        return JsonResponse({"challenge": str(payload.get("challenge", ""))})
    event = payload.get("event") if payload.get("type") == "event_callback" else None
    if isinstance(event, dict) and event.get("type") in MEMBER_EVENTS and isinstance(event.get("user"), str):
        services.slack_member_event_apply(
            slack_user_id=event["user"],
            joined=MEMBER_EVENTS[event["type"]],
            channel=str(event.get("channel") or ""),
        )
    return HttpResponse(status=200)
