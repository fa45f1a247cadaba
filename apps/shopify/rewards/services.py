"""Redeem a reward for points and deliver it as a Shopify discount code (RELIABILITY C3, C5, E2, E3).

1. `reward_redeem` debits the points and writes the `pending` RewardRedemption with its code in
   ONE transaction: the row is the outbox (the intent survives a crash before Shopify is called).
2. `reward_redemption_issue` creates the discount in Shopify with no transaction held, then
   records the outcome under the row lock:
   - created, or Shopify says the code is TAKEN and `codeDiscountNodeByCode` finds it (a
     previous attempt whose answer was lost) → `issued`, audit `reward_redeemed`;
   - refused for good (other userErrors, a non-retryable error, or still failing after
     REWARD_REDEMPTION_MAX_ATTEMPTS) → `failed` and the points go back with `points_reverse`
     under the key `redemption:<id>:refund`, exactly once; audit `reward_redemption_failed`;
   - a retryable failure → `RedemptionIssueRetry`; the Celery task retries with jittered backoff.
3. The request tries once, synchronously, with a short budget (`in_request=True`: one HTTP
   attempt, no long throttle wait), so the shopper usually gets the code in the answer; if that
   attempt fails retryably the answer is 202 `pending` and the task finishes the work. A beat
   sweep re-queues rows left `pending` (a crash between the commit and the attempt).

Several attempts may race (the request and a swept task): Shopify keeps codes unique per shop,
so the loser gets TAKEN and adopts the same discount; only a `pending` row changes state.
"""

import logging
import secrets
import time
from datetime import UTC, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.core.models import RewardKind, localized
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.services import points_redeem, points_reverse
from apps.core.services.ledger import IdempotencyKeyReused
from apps.core.tenancy import merchant_scope
from apps.core.tracking import track_on_commit

from ..graphql import ShopifyAuthError, ShopifyError, ShopifyUserError, graphql
from ..metafields.spec import customer_gid
from ..models import RedemptionStatus, RewardRedemption
from ..tokens import access_token_for

logger = logging.getLogger(__name__)

# No look-alikes (0/O, 1/I/L): codes are read off a screen and typed at checkout.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_PREFIX = "LOYAL"
# In a request, never wait on the cost bucket longer than this: answer 202 and let the task wait.
IN_REQUEST_MAX_WAIT_SECONDS = 1.0
ISSUABLE_KINDS = frozenset({RewardKind.FIXED_DISCOUNT, RewardKind.PERCENT_DISCOUNT, RewardKind.FREE_SHIPPING})

DISCOUNT_BASIC_CREATE = """
mutation RewardDiscountBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

DISCOUNT_FREE_SHIPPING_CREATE = """
mutation RewardDiscountFreeShippingCreate($freeShippingCodeDiscount: DiscountCodeFreeShippingInput!) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""

DISCOUNT_BY_CODE = """
query RewardDiscountByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) { id }
}
"""


class RewardNotRedeemableOnline(ApplicationError):
    code = "reward_not_redeemable"
    status = 422
    default_message = _("This reward cannot be redeemed online. Ask the shop about it.")


class RedemptionIssueRetry(Exception):
    """Shopify could not be reached or answered 5xx/429; try again later."""


def redemption_code_new() -> str:
    """A fresh code like LOYAL-7KQ2-M9XD from a CSPRNG (31^8 ≈ 8.5e11 codes)."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{CODE_PREFIX}-{chars[:4]}-{chars[4:]}"


def _check_issuable(reward) -> None:
    """Refuse, before any points move, a reward Shopify cannot deliver as a code.

    A free product needs the product it gives away; rewards carry no product reference yet, so
    they are redeemed by staff outside this flow until one is configured.
    """
    if reward.kind not in ISSUABLE_KINDS:
        raise RewardNotRedeemableOnline()
    if reward.kind == RewardKind.FIXED_DISCOUNT and reward.value <= 0:
        raise RewardNotRedeemableOnline()
    if reward.kind == RewardKind.PERCENT_DISCOUNT and not (0 < reward.value <= 100):
        raise RewardNotRedeemableOnline()


@transaction.atomic
def reward_redeem(
    *,
    merchant,
    customer,
    reward,
    idempotency_key: str,
    actor=None,
    locale: str = "en",
    source: str = "",
    issue_in_request: bool = False,
) -> RewardRedemption:
    """Debit the reward's points and record the pending redemption with its code, atomically.

    The same idempotency key returns the same redemption (one debit). Unless the caller tries to
    issue the code itself right after the commit (`issue_in_request`), the task is queued then.
    """
    if reward.merchant_id != merchant.pk or customer.merchant_id != merchant.pk:
        raise NotFound(_("Reward not found."))
    _check_issuable(reward)
    result = points_redeem(
        merchant=merchant,
        customer=customer,
        points=reward.points_cost,
        reward=reward,
        actor=actor,
        idempotency_key=idempotency_key,
        metadata={"source": source} if source else None,
    )
    with merchant_scope(merchant):
        if not result.created:
            existing = RewardRedemption.objects.filter(merchant=merchant, transaction=result.transaction).first()
            if existing is None:
                # The key was spent on a plain points redemption: it cannot mean this one too.
                raise IdempotencyKeyReused()
            return existing
        redemption = None
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    redemption = RewardRedemption.objects.create(
                        merchant=merchant,
                        customer=customer,
                        reward=reward,
                        transaction=result.transaction,
                        code=redemption_code_new(),
                        locale=locale,
                        expires_at=timezone.now() + timedelta(days=settings.REWARD_CODE_VALID_DAYS),
                    )
                break
            except IntegrityError:
                continue  # the code collided with another of the shop's codes: draw again
        if redemption is None:
            raise Conflict(_("No free discount code could be drawn. Try again."))
        audit_record(
            merchant=merchant,
            actor=actor,
            action="reward_redemption_requested",
            target=redemption,
            metadata={"customer_id": customer.pk, "reward_id": reward.pk, "points": reward.points_cost},
        )
    if not issue_in_request:
        merchant_id, redemption_id = merchant.pk, redemption.pk
        transaction.on_commit(lambda: reward_redemption_enqueue(merchant_id=merchant_id, redemption_id=redemption_id))
    return redemption


def reward_redemption_enqueue(*, merchant_id: str, redemption_id: str) -> bool:
    """Queue the issuing task; False when the broker is down (the pending sweep queues it later)."""
    from ..tasks import reward_redemption_issue_task  # tasks import this module

    return enqueue_unless_broker_down(
        reward_redemption_issue_task, kwargs={"merchant_id": merchant_id, "redemption_id": redemption_id}
    )


def reward_redemption_issue_in_request(*, merchant, redemption: RewardRedemption) -> RewardRedemption:
    """One short attempt inside a request; on a retryable failure queue the task and return pending."""
    if redemption.status != RedemptionStatus.PENDING:
        return redemption
    try:
        return reward_redemption_issue(merchant=merchant, redemption_id=redemption.pk, in_request=True)
    except RedemptionIssueRetry:
        reward_redemption_enqueue(merchant_id=merchant.pk, redemption_id=redemption.pk)
        redemption.refresh_from_db()
        return redemption


def reward_redemption_retry(*, merchant, redemption_id: str, actor) -> bool:
    """Staff: queue another issuing attempt of a pending redemption. False if it is not pending.

    A failed redemption has already given the points back; the shopper redeems again instead.
    """
    with merchant_scope(merchant):
        redemption = RewardRedemption.objects.filter(merchant=merchant, pk=redemption_id).first()
        if redemption is None or redemption.status != RedemptionStatus.PENDING:
            return False
        audit_record(
            merchant=merchant,
            actor=actor,
            action="reward_redemption_retried",
            target=redemption,
            metadata={"attempts": redemption.attempts},
        )
    return reward_redemption_enqueue(merchant_id=merchant.pk, redemption_id=redemption_id)


# --- Issuing ---------------------------------------------------------------------------------------


def reward_redemption_issue(*, merchant, redemption_id: str, in_request: bool = False) -> RewardRedemption:
    """Create the redemption's discount code in Shopify and record the outcome (see module doc).

    Raises RedemptionIssueRetry when another attempt can help. Never holds a transaction while
    Shopify is called.
    """
    redemption = _attempt_start(merchant=merchant, redemption_id=redemption_id)
    if redemption.status != RedemptionStatus.PENDING:
        return redemption
    try:
        discount_id = _discount_create(merchant=merchant, redemption=redemption, in_request=in_request)
    except ShopifyUserError as exc:
        return _fail(merchant=merchant, redemption_id=redemption_id, error=f"userErrors: {exc.detail}")
    except ShopifyError as exc:
        permanent = not exc.retryable and not isinstance(exc, ShopifyAuthError)
        if permanent or redemption.attempts >= settings.REWARD_REDEMPTION_MAX_ATTEMPTS:
            return _fail(merchant=merchant, redemption_id=redemption_id, error=f"{exc.code}: {exc.detail}")
        _attempt_failed(merchant=merchant, redemption_id=redemption_id, error=f"{exc.code}: {exc.detail}")
        raise RedemptionIssueRetry(exc.detail) from exc
    return _issued(merchant=merchant, redemption_id=redemption_id, discount_id=discount_id)


def _locked(merchant, redemption_id: str) -> RewardRedemption:
    return (
        RewardRedemption.objects.select_for_update()
        .select_related("reward", "customer", "transaction")
        .get(merchant=merchant, pk=redemption_id)
    )


def _attempt_start(*, merchant, redemption_id: str) -> RewardRedemption:
    with transaction.atomic(), merchant_scope(merchant):
        redemption = _locked(merchant, redemption_id)
        if redemption.status == RedemptionStatus.PENDING:
            redemption.attempts += 1
            redemption.save(update_fields=["attempts", "updated_at"])
        return redemption


def _attempt_failed(*, merchant, redemption_id: str, error: str) -> None:
    with transaction.atomic(), merchant_scope(merchant):
        redemption = _locked(merchant, redemption_id)
        redemption.last_error = error[:500]
        redemption.save(update_fields=["last_error", "updated_at"])
    logger.info("redemption %s: Shopify attempt failed, will retry (%s)", redemption_id, error[:200])


def _issued(*, merchant, redemption_id: str, discount_id: str) -> RewardRedemption:
    with transaction.atomic(), merchant_scope(merchant):
        redemption = _locked(merchant, redemption_id)
        if redemption.status != RedemptionStatus.PENDING:
            return redemption
        redemption.status = RedemptionStatus.ISSUED
        redemption.shopify_discount_id = discount_id
        redemption.issued_at = timezone.now()
        redemption.last_error = ""
        redemption.save(update_fields=["status", "shopify_discount_id", "issued_at", "last_error", "updated_at"])
        audit_record(
            merchant=merchant,
            actor=redemption.transaction.actor,
            action="reward_redeemed",
            target=redemption,
            metadata={
                "customer_id": redemption.customer_id,
                "reward_id": redemption.reward_id,
                "shopify_discount_id": discount_id,
                "attempts": redemption.attempts,
            },
        )
        track_on_commit(
            "reward_redeemed",
            merchant=merchant,
            distinct_id=redemption.customer_id,
            properties={
                "reward_id": redemption.reward_id,
                "reward_kind": redemption.reward.kind,
                "points": abs(redemption.transaction.points),
            },
        )
        return redemption


def _fail(*, merchant, redemption_id: str, error: str) -> RewardRedemption:
    """Mark the redemption failed and give the points back, in one transaction, exactly once."""
    with transaction.atomic(), merchant_scope(merchant):
        redemption = _locked(merchant, redemption_id)
        if redemption.status != RedemptionStatus.PENDING:
            return redemption
        redemption.status = RedemptionStatus.FAILED
        redemption.last_error = error[:500]
        redemption.save(update_fields=["status", "last_error", "updated_at"])
        refunded = True
        try:
            points_reverse(
                merchant=merchant,
                original=redemption.transaction,
                idempotency_key=f"redemption:{redemption.pk}:refund",
                reason="Reward code could not be issued in Shopify",
            )
        except Conflict:
            refunded = False  # staff had already reversed the debit by hand
        audit_record(
            merchant=merchant,
            actor=None,
            action="reward_redemption_failed",
            target=redemption,
            metadata={
                "customer_id": redemption.customer_id,
                "reward_id": redemption.reward_id,
                "attempts": redemption.attempts,
                "points_returned": refunded,
            },
        )
    logger.warning("redemption %s failed after %s attempts; points returned", redemption_id, redemption.attempts)
    return redemption


# --- Shopify -------------------------------------------------------------------------------------


def _iso(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def discount_input(redemption: RewardRedemption, *, starts_at) -> tuple[str, str, dict]:
    """(query, payload field, variables) of the mutation that creates the redemption's code."""
    reward = redemption.reward
    common = {
        "title": localized(reward.name, redemption.locale)[:255] or redemption.code,
        "code": redemption.code,
        "startsAt": _iso(starts_at),
        "endsAt": _iso(redemption.expires_at),
        # Only this shopper can use it (`context` replaces the deprecated `customerSelection`).
        "context": {"customers": {"add": [customer_gid(redemption.customer.shopify_customer_id)]}},
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
    }
    if reward.kind == RewardKind.FREE_SHIPPING:
        variables = {"freeShippingCodeDiscount": {**common, "destination": {"all": True}}}
        return DISCOUNT_FREE_SHIPPING_CREATE, "discountCodeFreeShippingCreate", variables
    if reward.kind == RewardKind.PERCENT_DISCOUNT:
        value = {"percentage": float(reward.value / Decimal(100))}
    else:
        # An amount in the shop's currency, taken off the order once (not off each item).
        value = {"discountAmount": {"amount": str(reward.value), "appliesOnEachItem": False}}
    variables = {"basicCodeDiscount": {**common, "customerGets": {"value": value, "items": {"all": True}}}}
    return DISCOUNT_BASIC_CREATE, "discountCodeBasicCreate", variables


def _in_request_sleep(seconds: float) -> None:
    if seconds > IN_REQUEST_MAX_WAIT_SECONDS:
        raise ShopifyError(retryable=True, detail="cost budget wait too long for a request")
    time.sleep(seconds)


def _discount_create(*, merchant, redemption: RewardRedemption, in_request: bool) -> str:
    token = access_token_for(merchant=merchant)
    query, field, variables = discount_input(redemption, starts_at=timezone.now())
    options = {"max_attempts": 1, "sleep": _in_request_sleep} if in_request else {}
    try:
        data = graphql(
            shop_domain=merchant.shop_domain,
            access_token=token,
            query=query,
            variables=variables,
            user_errors_at=f"{field}.userErrors",
            **options,
        )
    except ShopifyUserError as exc:
        if "TAKEN" not in exc.codes:
            raise
        # An earlier attempt created it and its answer was lost: adopt that discount.
        found = graphql(
            shop_domain=merchant.shop_domain,
            access_token=token,
            query=DISCOUNT_BY_CODE,
            variables={"code": redemption.code},
            estimated_cost=2,
            **options,
        )
        node = found.get("codeDiscountNodeByCode") or {}
        if not node.get("id"):
            raise
        return node["id"]
    node = (data.get(field) or {}).get("codeDiscountNode") or {}
    if not node.get("id"):
        raise ShopifyError(retryable=True, detail=f"{field} returned no discount")
    return node["id"]
