"""Writes of LoyalNest Collective: join (invite through Slack), Slack's member events, beta flags.

Every write audits inside its transaction; the Redis stream, PostHog, the outbox kick and the
shop metafield task run after commit. No Slack call ever runs while a row lock is held.
"""

import logging
import re

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.audit import audit_record
from apps.core.errors import ApplicationError
from apps.core.locales import LOCALES, django_language
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.streams import stream_append_on_commit
from apps.core.tenancy import merchant_scope, scopes_disabled
from apps.core.tracking import track_on_commit
from apps.notifications.services import notify

from . import slack_api
from .catalogue import BETA_FEATURES
from .models import SLACK_USER_ID_REGEX, MemberStatus, SlackCommunityMember, SlackCommunityUser
from .selectors import beta_features_get
from .storefront_flags import storefront_flags

logger = logging.getLogger(__name__)


class InvalidSlackUserId(ApplicationError):
    code = "invalid_slack_user_id"
    status = 400
    default_message = _("Enter your Slack member ID: it starts with U or W, like U0123ABCDEF.")


class SlackUserNotFound(ApplicationError):
    code = "user_not_found"
    status = 400
    default_message = _(
        "Slack has no member with this ID in LoyalNest Collective. Join the workspace first, then copy your "
        "member ID from your Slack profile."
    )


class SlackUserTaken(ApplicationError):
    code = "slack_user_taken"
    status = 409
    default_message = _("This Slack member already joined LoyalNest Collective for another store.")


class CommunityNotConfigured(ApplicationError):
    code = "community_unavailable"
    status = 503
    default_message = _("LoyalNest Collective is not available right now. Try again later.")


class UnknownBetaFeature(ApplicationError):
    code = "unknown_beta_feature"
    status = 400
    default_message = _("This beta feature does not exist.")


class NotACommunityMember(ApplicationError):
    code = "not_a_member"
    status = 409
    default_message = _("Join LoyalNest Collective first: beta features are for community members.")


def _state(member: SlackCommunityMember) -> dict:
    return {"community_id": member.pk, "slack_user_id": member.slack_user_id, "status": member.status}


# --- join ---------------------------------------------------------------------------------------


def slack_community_join(*, merchant, actor, slack_user_id: str, locale: str) -> SlackCommunityMember:
    """Bring a merchant's Slack member into the community: validate the id with Slack, store the
    row as `invited`, add them to the community channels. Joining again is harmless.

    Slack refusing the member (`user_not_found`) stores nothing; Slack rate-limited, down or
    behind an open breaker keeps the row `invited` and retries later (honouring `Retry-After`)."""
    slack_user_id = (slack_user_id or "").strip()
    if not re.fullmatch(SLACK_USER_ID_REGEX, slack_user_id):
        raise InvalidSlackUserId()
    if not slack_api.community_configured():
        raise CommunityNotConfigured()
    with scopes_disabled():
        claim = SlackCommunityUser.objects.filter(slack_user_id=slack_user_id).first()
    if claim is not None and claim.merchant_id != merchant.pk:
        raise SlackUserTaken()
    existing = SlackCommunityMember.objects.filter(merchant=merchant, slack_user_id=slack_user_id).first()
    if existing is not None and existing.status == MemberStatus.ACTIVE:
        return existing
    try:
        profile = slack_api.member_lookup(slack_user_id)
    except slack_api.SlackCommunityError as exc:
        if exc.error in slack_api.USER_ERRORS:
            raise SlackUserNotFound() from None
        if not exc.retryable:
            raise CommunityNotConfigured() from None
        # Slack is slow or down: store the member and let the retry task do the lookup's job.
        member = _member_store(merchant=merchant, actor=actor, slack_user_id=slack_user_id, locale=locale)
        _invite_later(member, exc)
        return member
    if profile.get("deleted") or profile.get("is_bot"):
        raise SlackUserNotFound()
    member = _member_store(merchant=merchant, actor=actor, slack_user_id=slack_user_id, locale=locale)
    return slack_community_invite(merchant=merchant, community_id=member.pk)


@transaction.atomic
def _member_store(*, merchant, actor, slack_user_id: str, locale: str) -> SlackCommunityMember:
    member = (
        SlackCommunityMember.objects.select_for_update().filter(merchant=merchant, slack_user_id=slack_user_id).first()
    )
    if member is not None:
        if member.status == MemberStatus.INACTIVE:  # left the channels, now joins again
            member.status = MemberStatus.INVITED
            member.save(update_fields=["status", "updated_at"])
        return member
    member = SlackCommunityMember(
        merchant=merchant,
        slack_user_id=slack_user_id,
        status=MemberStatus.INVITED,
        beta_features=beta_features_get(merchant=merchant),
        locale=locale,
        staff=actor if getattr(actor, "merchant_id", None) == merchant.pk else None,
    )
    # The claim's primary key serialises concurrent joins of one Slack member across stores.
    claim, _created = SlackCommunityUser.objects.get_or_create(
        slack_user_id=slack_user_id, defaults={"merchant": merchant, "community_id": member.pk}
    )
    if claim.merchant_id != merchant.pk:
        raise SlackUserTaken()
    if claim.community_id != member.pk:  # a concurrent join of this store won
        return SlackCommunityMember.objects.get(merchant=merchant, pk=claim.community_id)
    member.save(force_insert=True)
    audit_record(
        merchant=merchant,
        actor=actor,
        action="slack_joined",
        target=member,
        metadata={"slack_user_id": slack_user_id, "community_id": member.pk},
    )
    # The onboarding message, to the merchant's Slack (outbox, in this transaction).
    notify(
        merchant=merchant,
        type="slack_joined",
        idempotency_key=f"slack_joined:{member.pk}",
        locale=locale,
    )
    stream_append_on_commit(merchant_id=merchant.pk, key=f"slack:{merchant.pk}", data=_state(member))
    transaction.on_commit(lambda: _queue_metafield(merchant.pk))
    track_on_commit(
        "slack_joined",
        merchant=merchant,
        distinct_id=merchant.pk,
        properties={"community_id": member.pk, "locale": locale},
    )
    return member


def slack_community_invite(*, merchant, community_id: str, attempt: int = 0) -> SlackCommunityMember:
    """Add a stored member to the community channels and record the outcome
    (`already_in_channel` everywhere: active at once)."""
    member = SlackCommunityMember.objects.get(merchant=merchant, pk=community_id)
    if member.status != MemberStatus.INVITED:
        return member
    try:
        outcome = slack_api.member_invite(member.slack_user_id)
    except slack_api.SlackCommunityError as exc:
        if exc.error in slack_api.USER_ERRORS:
            _member_refused(member, exc.error)
            raise SlackUserNotFound() from None
        if not exc.retryable:
            logger.warning("community invite refused by Slack: %s", exc.error)
            _member_error(member, exc.error)
            raise CommunityNotConfigured() from None
        _invite_later(member, exc, attempt=attempt + 1)
        return member
    return _member_invited(merchant=merchant, community_id=community_id, already_member=outcome.already_member)


@transaction.atomic
def _member_invited(*, merchant, community_id: str, already_member: bool) -> SlackCommunityMember:
    member = SlackCommunityMember.objects.select_for_update().get(merchant=merchant, pk=community_id)
    member.invite_attempts += 1
    member.last_error = ""
    fields = ["invite_attempts", "last_error", "updated_at"]
    if already_member and member.status != MemberStatus.ACTIVE:
        member.status = MemberStatus.ACTIVE
        member.joined_at = timezone.now()
        fields += ["status", "joined_at"]
        stream_append_on_commit(merchant_id=merchant.pk, key=f"slack:{merchant.pk}", data=_state(member))
        transaction.on_commit(lambda: _queue_metafield(merchant.pk))
    member.save(update_fields=fields)
    return member


def _member_error(member: SlackCommunityMember, error: str) -> None:
    SlackCommunityMember.objects.filter(merchant_id=member.merchant_id, pk=member.pk).update(
        last_error=error[:64], invite_attempts=member.invite_attempts + 1, updated_at=timezone.now()
    )
    member.last_error = error[:64]
    member.invite_attempts += 1


@transaction.atomic
def _member_refused(member: SlackCommunityMember, error: str) -> None:
    """Slack does not know the member: the row goes, so the id can be corrected and joined again."""
    SlackCommunityUser.objects.filter(slack_user_id=member.slack_user_id, merchant_id=member.merchant_id).delete()
    SlackCommunityMember.objects.filter(merchant_id=member.merchant_id, pk=member.pk).delete()
    audit_record(
        merchant=member.merchant,
        action="slack_join_refused",
        metadata={"slack_user_id": member.slack_user_id, "community_id": member.pk, "error": error},
    )


def _invite_later(member: SlackCommunityMember, exc: slack_api.SlackCommunityError, *, attempt: int = 1) -> None:
    """Queue the next invite attempt after Slack's `Retry-After` (or the breaker's reset time)."""
    from .tasks import slack_community_invite_task

    _member_error(member, exc.error)
    member.retry_after = exc.retry_after
    countdown = exc.retry_after if exc.retry_after is not None else settings.NOTIFICATIONS_BREAKER_RESET_SECONDS
    transaction.on_commit(
        lambda: enqueue_unless_broker_down(
            slack_community_invite_task,
            kwargs={"merchant_id": member.merchant_id, "community_id": member.pk, "attempt": attempt},
            countdown=countdown,
        )
    )


# --- Slack events -------------------------------------------------------------------------------


def slack_member_event_apply(*, slack_user_id: str, joined: bool, channel: str = "") -> SlackCommunityMember | None:
    """A member joined or left a community channel (Events API): `active` / `inactive`.
    Events for people or channels outside the community are ignored (None)."""
    if channel and channel not in settings.SLACK_COMMUNITY_CHANNEL_IDS:
        return None
    with scopes_disabled():
        claim = SlackCommunityUser.objects.select_related("merchant").filter(slack_user_id=slack_user_id).first()
    if claim is None:
        return None
    merchant = claim.merchant
    with merchant_scope(merchant), transaction.atomic():
        member = (
            SlackCommunityMember.objects.select_for_update()
            .filter(merchant=merchant, slack_user_id=slack_user_id)
            .first()
        )
        if member is None:
            return None
        status = MemberStatus.ACTIVE if joined else MemberStatus.INACTIVE
        if member.status == status:
            return member
        previous = member.status
        member.status = status
        if joined:
            member.joined_at = timezone.now()
        else:
            member.left_at = timezone.now()
        member.save(update_fields=["status", "joined_at", "left_at", "updated_at"])
        audit_record(
            merchant=merchant,
            action="slack_member_status_changed",
            target=member,
            metadata={"slack_user_id": slack_user_id, "from": previous, "to": status},
        )
        stream_append_on_commit(merchant_id=merchant.pk, key=f"slack:{merchant.pk}", data=_state(member))
        transaction.on_commit(lambda: _queue_metafield(merchant.pk))
    return member


# --- beta features -------------------------------------------------------------------------------


def _labels(feature_key: str) -> dict:
    """The feature's name in every locale: the notification picks the recipient's."""
    from django.utils import translation

    label = BETA_FEATURES[feature_key].label
    rendered = {}
    for locale in LOCALES:
        with translation.override(django_language(locale)):
            rendered[locale] = str(label)
    return rendered


def beta_feature_set(*, merchant, actor, feature: str, enabled: bool = True, locale: str | None = None) -> dict:
    """Switch a beta feature on (or off) for the merchant; returns the merchant's flags.

    Switching on announces it on the merchant's Slack (outbox, in `locale`), audits
    `beta_feature_enabled`, appends to `beta:{merchant_id}`, tracks, and queues the shop
    metafield `$app:loyalnest.slack_beta_features`."""
    if feature not in BETA_FEATURES:
        raise UnknownBetaFeature()
    with transaction.atomic():
        members = list(SlackCommunityMember.objects.select_for_update().filter(merchant=merchant).order_by("pk"))
        if not members:
            raise NotACommunityMember()
        flags = dict(members[0].beta_features or {})
        changed = bool(flags.get(feature)) != enabled
        if enabled:
            flags[feature] = True
        else:
            flags.pop(feature, None)
        if not changed:
            return flags
        SlackCommunityMember.objects.filter(merchant=merchant).update(beta_features=flags, updated_at=timezone.now())
        storefront_flags.forget(merchant.pk)
        transaction.on_commit(lambda: storefront_flags.forget(merchant.pk))
        action = "beta_feature_enabled" if enabled else "beta_feature_disabled"
        audit_record(
            merchant=merchant,
            actor=actor,
            action=action,
            metadata={"beta_feature": feature, "slack_user_id": members[0].slack_user_id},
        )
        if enabled:
            notify(
                merchant=merchant,
                type="beta_feature_released",
                idempotency_key=f"beta_feature_released:{feature}:{timezone.now().isoformat()}",
                context={"feature": _labels(feature)},
                locale=locale,
            )
        stream_append_on_commit(
            merchant_id=merchant.pk,
            key=f"beta:{merchant.pk}",
            data={"beta_features": flags, "feature": feature, "enabled": enabled},
        )
        track_on_commit(
            action,
            merchant=merchant,
            distinct_id=merchant.pk,
            properties={"beta_feature": feature, "locale": locale or ""},
        )
        transaction.on_commit(lambda: _queue_metafield(merchant.pk))
    return flags


def _queue_metafield(merchant_id: str) -> None:
    from .tasks import slack_community_metafields_write_task

    enqueue_unless_broker_down(slack_community_metafields_write_task, kwargs={"merchant_id": merchant_id})
