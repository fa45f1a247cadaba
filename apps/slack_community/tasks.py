"""Celery tasks of LoyalNest Collective: thin, ids in, one service each."""

import logging
import random

from celery import shared_task
from django.conf import settings

from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope
from apps.shopify.graphql import ShopifyAuthError, ShopifyError

from . import services
from .models import MemberStatus
from .shop_metafield import slack_community_metafields_write

logger = logging.getLogger(__name__)


def _merchant(merchant_id: str) -> Merchant | None:
    return Merchant.objects.filter(pk=merchant_id, is_installed=True).first()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def slack_community_invite_task(*, merchant_id: str, community_id: str, attempt: int = 1) -> str | None:
    """Retry an invite Slack could not take; the service queues the next try (Retry-After)."""
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    with merchant_scope(merchant):
        if attempt > settings.SLACK_COMMUNITY_INVITE_MAX_RETRIES:
            logger.warning("community invite %s given up after %s attempts", community_id, attempt - 1)
            return None
        try:
            member = services.slack_community_invite(merchant=merchant, community_id=community_id, attempt=attempt)
        except services.ApplicationError as exc:
            return exc.code
    return member.status if member.status != MemberStatus.INVITED else member.last_error or member.status


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def slack_community_metafields_write_task(self, *, merchant_id: str) -> dict | None:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return None
    try:
        return slack_community_metafields_write(merchant=merchant)
    except ShopifyAuthError:
        logger.warning("slack community metafields of %s not written: the shop must re-authorise", merchant_id)
        return None
    except ShopifyError as exc:
        if not exc.retryable:
            raise
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60) * (0.5 + random.random())) from exc  # noqa: S311
