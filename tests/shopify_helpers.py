"""Sign requests the way Shopify does, for tests (session tokens today; webhooks, proxy later)."""

import time

import jwt
from django.conf import settings


def session_token(shop_domain: str, *, user_id: str = "90001", secret=None, audience=None, **overrides) -> str:
    now = int(time.time())
    payload = {
        "iss": f"https://{shop_domain}/admin",
        "dest": f"https://{shop_domain}",
        "aud": audience or settings.SHOPIFY_API_KEY,
        "sub": user_id,
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now - 5,
        "jti": f"jti-{now}-{user_id}",
        "sid": "session-id",
    }
    payload.update(overrides)
    return jwt.encode(payload, secret or settings.SHOPIFY_API_SECRET, algorithm="HS256")


def auth_header(staff) -> dict:
    """Headers for a merchant API call as `staff` (a StaffMember)."""
    return {"HTTP_AUTHORIZATION": f"Bearer {session_token(staff.merchant.shop_domain, user_id=staff.shopify_user_id)}"}
