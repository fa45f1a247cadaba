"""Attribution: when a freshly installed store first opens the embedded app carrying a referral
code — the `loyalnest_mref` cookie set by `/r/<code>`, or the `mref` parameter the listing URL
carried through the install — it becomes a pending referral of the code's advocate.

Runs after the page answered (the page's own session-token check has installed the shop by
then); the shop comes from the verified session token only. It never breaks a page: a refused
or failed attribution is logged and audited, and the cookie is dropped once it was used.
"""

import logging

from django.db import DatabaseError

from apps.core import errors
from apps.core.models import Merchant
from apps.shopify.auth import decode_session_token

from . import services
from .views import COOKIE_NAME, URL_PARAMETER

logger = logging.getLogger(__name__)


class ReferralAttributionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method != "GET" or not request.path.startswith("/app/") or response.status_code != 200:
            return response
        token = request.GET.get(URL_PARAMETER) or request.COOKIES.get(COOKIE_NAME)
        id_token = request.GET.get("id_token", "")
        if not token or not id_token:
            return response
        code = services.referral_token_code(token)
        if code is not None:
            self._attribute(id_token, code)
        if COOKIE_NAME in request.COOKIES:
            response.delete_cookie(COOKIE_NAME, samesite="None")
        return response

    def _attribute(self, id_token: str, code: str) -> None:
        try:
            shop = decode_session_token(id_token)["shop"]
        except (errors.AuthenticationFailed, KeyError):
            return
        merchant = Merchant.objects.filter(shop_domain=shop, is_installed=True).first()
        if merchant is None:
            return
        try:
            from .shopify_api import shop_owner_refresh

            link = services.link_get_by_code(code)
            if link is not None and link.merchant_id != merchant.pk:
                # Same-owner check needs both owners: read them now (one attempt each); when
                # Shopify cannot answer, the completion step checks again.
                for shop_merchant in (merchant, link.merchant):
                    if not services._owners_known(shop_merchant.pk):
                        shop_owner_refresh(merchant=shop_merchant, max_attempts=1)
            services.merchant_referral_attribute(referred=merchant, code=code)
        except errors.ApplicationError as exc:
            logger.info("referral code not attributed to %s: %s", merchant.pk, exc.code)
        except DatabaseError:
            logger.exception("referral attribution of %s failed", merchant.pk)
