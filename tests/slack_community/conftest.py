import hashlib
import hmac
import json
import time

import pytest

from tests.factories import StaffMemberFactory
from tests.fakes.slack_api import BOT_TOKEN, FakeSlackWorkspace

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNELS = ["C0COMMUNITY", "C0ANNOUNCE"]


@pytest.fixture
def slack(fake_providers, settings, notification_providers_relay):
    """The fake Collective workspace in place of the notifications' fake Slack (same relay)."""
    fake = FakeSlackWorkspace()
    with fake:
        notification_providers_relay.state["slack"] = fake
        settings.NOTIFICATIONS_SLACK_BOT_TOKEN = BOT_TOKEN
        settings.SLACK_COMMUNITY_CHANNEL_IDS = list(CHANNELS)
        settings.SLACK_COMMUNITY_ADMIN_TOKEN = ""
        settings.SLACK_COMMUNITY_SIGNING_SECRET = SIGNING_SECRET
        yield fake


@pytest.fixture
def support(merchant):
    """A staff member without `admin:community`."""
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90002", role="support")


def signed_headers(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": str(timestamp), "HTTP_X_SLACK_SIGNATURE": signature}


def event_body(event_type: str, user: str, channel: str = CHANNELS[0]) -> bytes:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0COLLECTIVE",
            "event": {"type": event_type, "user": user, "channel": channel, "channel_type": "C"},
            "event_id": f"Ev{user}{event_type[:6]}",
            "event_time": int(time.time()),
        }
    ).encode()
