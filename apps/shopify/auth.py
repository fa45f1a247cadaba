"""Session-token authentication for the embedded admin API (RELIABILITY A6).

Shopify App Bridge sends `Authorization: Bearer <JWT>` signed HS256 with the app's client
secret. The shop comes from the token only (`dest`, which must match `iss`), never from the
request. During a secret rotation the previous secret is accepted too.

A verified token of a shop with no usable offline token (first open after install, reinstall,
or `needs_reauth`) is exchanged for one before the request continues (apps.shopify.tokens);
installed shops cost one query and no network call.
"""

import re
from urllib.parse import urlparse

import jwt
from django.conf import settings
from rest_framework.authentication import BaseAuthentication

from apps.core import errors
from apps.core.models import Merchant
from apps.core.services import staff_member_get_or_create
from apps.core.tenancy import scopes_disabled

from .tokens import merchant_for_session_token

SHOP_HOST = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
DEMO_SHOP_DOMAIN = "demo-loyalnest.myshopify.com"


def _secrets():
    secrets = [settings.SHOPIFY_API_SECRET]
    previous = getattr(settings, "SHOPIFY_API_SECRET_PREVIOUS", "")
    if previous:
        secrets.append(previous)
    return [secret for secret in secrets if secret]


def decode_session_token(token: str) -> dict:
    """Verify signature, algorithm, audience, expiry (10 s leeway) and issuer/destination."""
    last_error = None
    for secret in _secrets():
        try:
            payload = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=settings.SHOPIFY_API_KEY,
                leeway=settings.SESSION_TOKEN_LEEWAY_SECONDS,
                options={"require": ["exp", "nbf", "iss", "dest", "aud", "sub"]},
            )
            break
        except jwt.InvalidSignatureError as exc:
            last_error = exc
            continue
        except jwt.PyJWTError as exc:
            raise errors.AuthenticationFailed() from exc
    else:
        raise errors.AuthenticationFailed() from last_error
    dest = (urlparse(str(payload["dest"])).hostname or "").lower()
    iss = (urlparse(str(payload["iss"])).hostname or "").lower()
    if not SHOP_HOST.match(dest) or dest != iss:
        raise errors.AuthenticationFailed()
    payload["shop"] = dest
    return payload


class SessionTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.AuthenticationFailed()
        payload = decode_session_token(token.strip())
        # Installed shops: one query. Otherwise the verified token is exchanged for an offline
        # token first (managed installation, or re-authorisation after a refused refresh).
        merchant = merchant_for_session_token(token=token.strip(), claims=payload)
        with scopes_disabled():
            staff = staff_member_get_or_create(merchant=merchant, shopify_user_id=str(payload["sub"]))
        if not staff.is_active:
            raise errors.PermissionDenied()
        return staff, payload

    def authenticate_header(self, request):
        return 'Bearer realm="shopify-session-token"'


class DemoAuthentication(BaseAuthentication):
    """`make run` only (DEBUG and DEMO_MODE): requests without a token act as the demo shop's
    owner, so a newcomer can open the dashboard without Shopify. `check --deploy` refuses it."""

    def authenticate(self, request):
        if not (settings.DEBUG and settings.DEMO_MODE) or request.META.get("HTTP_AUTHORIZATION"):
            return None
        with scopes_disabled():
            merchant = Merchant.objects.filter(shop_domain=DEMO_SHOP_DOMAIN).first()
            if merchant is None:
                return None
            staff = staff_member_get_or_create(merchant=merchant, shopify_user_id="demo-owner")
        return staff, None
