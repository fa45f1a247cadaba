"""Sign requests the way Shopify does, for tests (session tokens today; webhooks, proxy later)."""

import time
from datetime import timedelta

import jwt
from django.conf import settings
from django.utils import timezone

from apps.shopify.models import ShopifyInstallation


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


def shopify_connect(fake, merchant, *, expires_in=timedelta(hours=1), refresh_expires_in=timedelta(days=90)):
    """Store a token pair the fake Shopify issued for the merchant's shop (as after an install),
    expiring as asked. Returns (access_token, refresh_token)."""
    access, refresh = fake.issue_tokens(merchant.shop_domain)
    now = timezone.now()
    ShopifyInstallation.objects.update_or_create(
        merchant=merchant,
        defaults={
            "access_token": access,
            "access_token_expires_at": now + expires_in,
            "refresh_token": refresh,
            "refresh_token_expires_at": now + refresh_expires_in,
            "scopes": "read_customers,write_customers,read_orders",
            "needs_reauth": False,
            "reauth_reason": "",
        },
    )
    return access, refresh


def proxy_signed_query(shop: str, customer_id=None, *, secret=None, timestamp=None, **params) -> str:
    """The query string Shopify's app proxy forwards: the widget's own parameters plus `shop`,
    `logged_in_customer_id` (blank when nobody is logged in), `path_prefix` and `timestamp`,
    signed as Shopify signs them: hex HMAC-SHA256 of the sorted `key=value` pairs joined with
    no separator, a repeated parameter's values joined by `,`. List values repeat a parameter."""
    import hashlib
    import hmac
    from urllib.parse import urlencode

    signed = {
        **params,
        "shop": shop,
        "logged_in_customer_id": "" if customer_id is None else str(customer_id),
        "path_prefix": "/apps/loyalnest",
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
    }
    message = "".join(
        f"{key}={','.join(value) if isinstance(value, list) else value}" for key, value in sorted(signed.items())
    )
    key = (secret or settings.SHOPIFY_API_SECRET).encode()
    signature = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
    return urlencode({**signed, "signature": signature}, doseq=True)
