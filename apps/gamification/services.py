"""Writes of advanced gamification: badges, streak settings and actions, teams and scores.

Each service validates, changes rows, writes the audit row in the transaction and sends its
side effects after commit (streams, PostHog, Flow, the leaderboard's sorted set). The set-based
reactions to orders and ledger entries are in `awarding`; other apps use this module (e.g.
`apps.theme_extensions` through its widget contributor).
"""

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core import errors
from apps.core.audit import audit_record
from apps.core.models import Customer, ReferralLink
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.streams import stream_append_on_commit
from apps.core.tracking import track_on_commit
from apps.slack_community.selectors import beta_feature_enabled

from . import rules
from .awarding import (
    CUSTOMER_FIELDS,
    awards_apply,
    badges_evaluate_for_customer,
    settings_for,
    streaks_advance,
    team_scores_increment,
)
from .leaderboard import leaderboard_key, leaderboard_refresh_on_commit
from .models import (
    CYCLE_REGEX,
    Achievement,
    ActionType,
    Badge,
    GamificationSettings,
    Streak,
    Team,
    TeamLeaderboard,
    TeamMembership,
)

__all__ = [
    "awards_apply",
    "badge_archive",
    "badge_award",
    "badge_backfill",
    "badge_create",
    "badge_update",
    "gamification_settings_update",
    "leaderboard_key",
    "streak_record",
    "streaks_reset_broken",
    "team_create",
    "team_join",
    "team_leaderboard_update",
    "team_members_assign",
    "team_scores_increment",
]


class BadgeInvalid(errors.ValidationFailed):
    code = "badge_invalid"
    default_message = _("The badge is invalid.")


class ActionNotQualifying(errors.ApplicationError):
    code = "action_not_qualifying"
    status = 422
    default_message = _("This action does not count towards streaks in this shop.")


class TeamNotOpen(errors.ApplicationError):
    code = "team_not_open"
    status = 409
    default_message = _("This team cannot be joined.")


class TeamAlreadyJoined(errors.Conflict):
    code = "team_already_joined"
    default_message = _("You are already in a team for this cycle.")


def _validation_details(exc: ValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {field: [str(message) for message in messages] for field, messages in exc.message_dict.items()}
    return {"non_field_errors": [str(message) for message in exc.messages]}


def badge_clean(*, name, icon: str, rule) -> dict:
    """Validate a badge's names, icon and rule; raise BadgeInvalid (400) with field messages."""
    details = {}
    try:
        rules.validate_badge_name(name)
    except ValidationError as exc:
        details["name"] = [str(message) for message in exc.messages]
    try:
        rule = rules.rule_clean(rule)
    except ValidationError as exc:
        details.update(_validation_details(exc))
    icon = (icon or "star").strip()
    if not icon or len(icon) > 64:
        details["icon"] = [str(_("Enter an icon name of at most 64 characters."))]
    if details:
        first = next(iter(details.values()))[0]
        raise BadgeInvalid(first, details=details)
    return {"name": {key: value.strip() for key, value in name.items()}, "icon": icon, "rule": rule}


@transaction.atomic
def badge_create(*, merchant, actor, name: dict, icon: str, rule: dict, is_active: bool = True) -> Badge:
    """Define a badge; customers who already qualify earn it with their next order or action."""
    cleaned = badge_clean(name=name, icon=icon, rule=rule)
    badge = Badge.objects.create(merchant=merchant, is_active=is_active, **cleaned)
    audit_record(
        merchant=merchant,
        actor=actor,
        action="badge_created",
        target=badge,
        metadata={"rule": badge.rule, "locales": sorted(badge.name)},
    )
    track_on_commit("badge_created", merchant=merchant, distinct_id=merchant.pk, properties={"rule": rule.get("type")})
    _backfill_on_commit(badge)
    return badge


@transaction.atomic
def badge_update(*, merchant, actor, badge_id: str, name: dict, icon: str, rule: dict, is_active: bool) -> Badge:
    """Edit a live badge: a new version; achievements already earned stay as they are."""
    badge = Badge.objects.select_for_update().filter(merchant=merchant, pk=badge_id).first()
    if badge is None:
        raise errors.NotFound(_("Badge not found."))
    cleaned = badge_clean(name=name, icon=icon, rule=rule)
    before = {"rule": badge.rule, "is_active": badge.is_active, "version": badge.version}
    for field, value in cleaned.items():
        setattr(badge, field, value)
    badge.is_active = is_active
    badge.version += 1
    badge.save()
    audit_record(
        merchant=merchant,
        actor=actor,
        action="badge_updated",
        target=badge,
        metadata={"before": before, "rule": badge.rule, "is_active": is_active, "version": badge.version},
    )
    _backfill_on_commit(badge)
    return badge


def _backfill_on_commit(badge: Badge) -> None:
    if badge.is_active and badge.rule.get("type") in BACKFILL_RULES:
        from .tasks import badge_backfill_task

        merchant_id, badge_id = badge.merchant_id, badge.pk
        # A dead broker never fails the merchant's save; the next edit (or order) catches up.
        transaction.on_commit(
            lambda: enqueue_unless_broker_down(
                badge_backfill_task, kwargs={"merchant_id": merchant_id, "badge_id": badge_id}
            )
        )


# Rules decidable from stored state; seasonal badges need a purchase in the window and are only
# awarded as orders arrive.
BACKFILL_RULES = frozenset({"first_purchase", "order_count", "total_spend", "streak", "referrals"})


def badge_backfill(*, merchant, badge_id: str, batch_size: int = 1000) -> int:
    """Award a new or edited active badge to customers who already qualify (set-based, in
    chunks of `batch_size` customers, each chunk its own transaction). Returns how many."""
    badge = Badge.objects.filter(merchant=merchant, pk=badge_id, is_active=True).first()
    if badge is None or badge.rule.get("type") not in BACKFILL_RULES:
        return 0
    rule = badge.rule
    kind = rule["type"]
    candidates = Customer.objects.filter(merchant=merchant, redacted_at__isnull=True).exclude(
        Exists(Achievement.objects.filter(merchant=merchant, customer_id=OuterRef("pk"), badge_definition=badge))
    )
    if kind == "first_purchase":
        candidates = candidates.filter(orders_count__gte=1)
    elif kind == "order_count":
        candidates = candidates.filter(orders_count__gte=rule["count"])
    elif kind == "total_spend":
        candidates = candidates.filter(total_spent__gte=Decimal(rule["amount"]))
    elif kind == "streak":
        # Reached at some point: the longest streak counts, not only a live one.
        candidates = candidates.filter(
            Exists(
                Streak.objects.filter(merchant=merchant, customer_id=OuterRef("pk"), longest_count__gte=rule["length"])
            )
        )
    else:
        referred = (
            ReferralLink.objects.filter(merchant=merchant, customer_id=OuterRef("pk"))
            .values("customer_id")
            .annotate(total=Sum("conversions"))
            .values("total")
        )
        candidates = candidates.annotate(referred=Subquery(referred)).filter(referred__gte=rule["count"])
    awarded, after = 0, ""
    while True:
        chunk = list(candidates.filter(pk__gt=after).order_by("pk").only(*CUSTOMER_FIELDS)[:batch_size])
        if not chunk:
            return awarded
        streaks = dict(
            Streak.objects.filter(merchant=merchant, customer_id__in=[c.pk for c in chunk]).values_list(
                "customer_id", "longest_count" if kind == "streak" else "current_count"
            )
        )
        with transaction.atomic():
            awarded += len(
                awards_apply(merchant=merchant, pairs=[(c, badge) for c in chunk], streaks=streaks, source="backfill")
            )
        after = chunk[-1].pk


@transaction.atomic
def badge_archive(*, merchant, actor, badge_id: str) -> Badge:
    """Stop awarding a badge; those who earned it keep it."""
    badge = Badge.objects.filter(merchant=merchant, pk=badge_id).first()
    if badge is None:
        raise errors.NotFound(_("Badge not found."))
    return badge_update(
        merchant=merchant,
        actor=actor,
        badge_id=badge_id,
        name=badge.name,
        icon=badge.icon,
        rule=badge.rule,
        is_active=False,
    )


@transaction.atomic
def badge_award(*, merchant, customer, badge_id: str, source: str, actor=None, extra: dict | None = None) -> tuple:
    """Award one badge to one customer (Flow's "award badge", staff); returns (achievement,
    created). Awarding a badge the customer holds returns the held one."""
    badge = Badge.objects.filter(merchant=merchant, pk=badge_id).first()
    if badge is None:
        raise errors.NotFound(_("Badge not found."))
    streak = Streak.objects.filter(merchant=merchant, customer=customer).values_list("current_count", flat=True).first()
    created = awards_apply(
        merchant=merchant, pairs=[(customer, badge)], streaks={customer.pk: streak or 0}, source=source, extra=extra
    )
    if created:
        return created[0], True
    return Achievement.objects.get(merchant=merchant, customer=customer, badge_definition=badge), False


@transaction.atomic
def gamification_settings_update(
    *, merchant, actor, streak_period: str, streak_actions: list[str], streak_notify_min: int
) -> GamificationSettings:
    """Save the streak period and qualifying actions (existing streaks keep their counts).
    Switching to weekly periods needs the `streaks` beta flag (a shop already weekly stays so)."""
    row, _created = GamificationSettings.objects.select_for_update().get_or_create(merchant=merchant)
    if (
        streak_period == rules.WEEK
        and row.streak_period != rules.WEEK
        and not beta_feature_enabled(merchant, "streaks")
    ):
        raise errors.PermissionDenied(code="beta_feature_required", details={"beta_feature": ["streaks"]})
    before = {"streak_period": row.streak_period, "streak_actions": row.streak_actions}
    row.streak_period = streak_period
    row.streak_actions = list(dict.fromkeys(streak_actions))
    row.streak_notify_min = streak_notify_min
    row.save()
    audit_record(
        merchant=merchant,
        actor=actor,
        action="gamification_settings_updated",
        target=row,
        metadata={"before": before, "streak_period": streak_period, "streak_actions": row.streak_actions},
    )
    return row


@transaction.atomic
def streak_record(*, merchant, customer_id: str, action_type: str, locale: str, actor=None) -> dict:
    """Record a qualifying action for a customer now (the seeds' `POST /v1/api/gamification/streak`):
    the streak grows at most once per period, badges whose rules now hold are awarded, and the
    answer carries the streak and the name (in `locale`) of a badge this action earned."""
    customer = (
        Customer.objects.filter(merchant=merchant, pk=customer_id, redacted_at__isnull=True)
        .only(*CUSTOMER_FIELDS)
        .first()
    )
    if customer is None:
        raise errors.NotFound(_("Customer not found."))
    settings = settings_for(merchant)
    if action_type not in settings.streak_actions:
        raise ActionNotQualifying()
    zone = rules.merchant_zone(merchant)
    start = rules.period_start(timezone.now(), settings.streak_period, zone)
    counts = streaks_advance(
        merchant=merchant,
        settings=settings,
        periods={customer.pk: [start]},
        customers={customer.pk: customer},
        source=f"api:{action_type}",
    )
    streak_count = counts.get(customer.pk, 0)
    awarded = badges_evaluate_for_customer(
        merchant=merchant, customer=customer, streak=streak_count, source="streak_api"
    )
    if actor is not None:
        audit_record(
            merchant=merchant,
            actor=actor,
            action="streak_action_recorded",
            target=customer,
            metadata={"action_type": action_type, "streak_count": streak_count},
        )
    badge = rules.badge_name(awarded[-1].badge, locale) if awarded else ""
    return {"streak_count": streak_count, "badge": badge}


def streaks_reset_broken(*, merchant, today=None) -> int:
    """Reset to 0 every streak whose last qualifying period is older than the previous period
    (the nightly task; reads apply the same rule lazily). Returns how many were reset."""
    settings = settings_for(merchant)
    zone = rules.merchant_zone(merchant)
    moment = today or timezone.now()
    current = rules.period_start(moment, settings.streak_period, zone)
    cutoff = rules.period_previous(current, settings.streak_period)
    with transaction.atomic():
        reset = Streak.objects.filter(merchant=merchant, current_count__gt=0, last_period_date__lt=cutoff).update(
            current_count=0, updated_at=timezone.now()
        )
    return reset


# --- teams --------------------------------------------------------------------------------------


def cycle_clean(cycle: str) -> str:
    if not isinstance(cycle, str) or not re.match(CYCLE_REGEX, cycle):
        raise errors.ValidationFailed(
            _("Enter the cycle as year and month, e.g. 2025-07."),
            details={"cycle": [str(_("Enter the cycle as year and month, e.g. 2025-07."))]},
        )
    return cycle


@transaction.atomic
def team_create(*, merchant, actor, name: dict, cycle: str, is_open: bool = True) -> Team:
    """Define a team for a cycle; it enters the cycle's leaderboard with 0 points."""
    try:
        rules.validate_badge_name(name)
    except ValidationError as exc:
        raise errors.ValidationFailed(exc.messages[0], details={"name": [str(m) for m in exc.messages]}) from None
    cycle = cycle_clean(cycle)
    team = Team.objects.create(merchant=merchant, name=name, cycle=cycle, is_open=is_open)
    TeamLeaderboard.objects.create(merchant=merchant, team_id=team.pk, cycle=cycle, score=0)
    audit_record(merchant=merchant, actor=actor, action="team_created", target=team, metadata={"cycle": cycle})
    leaderboard_refresh_on_commit(merchant_id=merchant.pk, changed={cycle: {team.pk}})
    return team


def _membership_add(*, merchant, customer, team: Team, joined_via: str) -> TeamMembership:
    try:
        with transaction.atomic():
            membership = TeamMembership.objects.create(
                merchant=merchant, customer=customer, team=team, cycle=team.cycle, joined_via=joined_via
            )
    except IntegrityError:
        raise TeamAlreadyJoined() from None
    return membership


@transaction.atomic
def team_join(*, merchant, customer, team_id: str) -> TeamMembership:
    """A shopper joins an open team of a cycle from the storefront (one team per cycle): the
    `team_leaderboards` beta feature, refused as not open without the merchant's flag."""
    team = Team.objects.filter(merchant=merchant, pk=team_id).first()
    if team is None:
        raise errors.NotFound(_("Team not found."))
    if not team.is_open or not beta_feature_enabled(merchant, "team_leaderboards"):
        raise TeamNotOpen()
    existing = TeamMembership.objects.filter(merchant=merchant, customer=customer, cycle=team.cycle).first()
    if existing is not None:
        if existing.team_id == team.pk:
            return existing
        raise TeamAlreadyJoined()
    membership = _membership_add(merchant=merchant, customer=customer, team=team, joined_via="storefront")
    audit_record(
        merchant=merchant, action="team_joined", target=membership, metadata={"team_id": team.pk, "cycle": team.cycle}
    )
    track_on_commit("team_joined", merchant=merchant, distinct_id=customer.pk, properties={"cycle": team.cycle})
    return membership


@transaction.atomic
def team_members_assign(*, merchant, actor, team_id: str, customer_ids: list[str]) -> int:
    """Staff put customers into a team for its cycle (moving them from another team of the same
    cycle; points already counted stay with the team they were earned for). Returns how many."""
    team = Team.objects.filter(merchant=merchant, pk=team_id).first()
    if team is None:
        raise errors.NotFound(_("Team not found."))
    found = set(
        Customer.objects.filter(merchant=merchant, pk__in=customer_ids, redacted_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    missing = sorted(set(customer_ids) - found)
    if missing:
        raise errors.NotFound(_("Customer not found."), details={"customer_ids": missing})
    TeamMembership.objects.filter(merchant=merchant, cycle=team.cycle, customer_id__in=found).exclude(
        team=team
    ).delete()
    TeamMembership.objects.bulk_create(
        [
            TeamMembership(
                merchant=merchant, customer_id=customer_id, team=team, cycle=team.cycle, joined_via="assigned"
            )
            for customer_id in sorted(found)
        ],
        ignore_conflicts=True,
    )
    audit_record(
        merchant=merchant,
        actor=actor,
        action="team_members_assigned",
        target=team,
        metadata={"team_id": team.pk, "cycle": team.cycle, "count": len(found)},
    )
    return len(found)


@transaction.atomic
def team_leaderboard_update(*, merchant, actor, team_id: str, score: int, cycle: str, locale: str) -> TeamLeaderboard:
    """The seeds' `POST /v1/api/team-leaderboards`: set a team's score for a cycle (a merchant's
    correction or an externally computed challenge); sorted set, stream, audit, PostHog."""
    cycle = cycle_clean(cycle)
    team = Team.objects.filter(merchant=merchant, pk=team_id).first()
    if team is None:
        raise errors.NotFound(_("Team not found."))
    if team.cycle != cycle:
        raise errors.ValidationFailed(
            _("This team belongs to another cycle."), details={"cycle": [str(_("This team belongs to another cycle."))]}
        )
    row = TeamLeaderboard.objects.select_for_update().filter(merchant=merchant, team_id=team_id, cycle=cycle).first()
    previous = row.score if row is not None else 0
    if row is None:
        row = TeamLeaderboard.objects.create(merchant=merchant, team_id=team_id, cycle=cycle, score=score)
    else:
        row.score = score
        row.save(update_fields=["score", "updated_at"])
    audit_record(
        merchant=merchant,
        actor=actor,
        action="team_leaderboard_updated",
        target=row,
        metadata={"team_id": team_id, "cycle": cycle, "score": score, "previous_score": previous, "locale": locale},
    )
    leaderboard_refresh_on_commit(merchant_id=merchant.pk, changed={cycle: {team_id}})
    stream_append_on_commit(
        merchant_id=merchant.pk,
        key=f"team_leaderboard:{merchant.pk}:{cycle}",
        data={"leaderboard_id": row.pk, "team_id": team_id, "cycle": cycle, "score": score},
    )
    track_on_commit(
        "team_leaderboard_updated",
        merchant=merchant,
        distinct_id=actor.pk if actor is not None else merchant.pk,
        properties={"cycle": cycle, "team_id": team_id, "score": score},
    )
    return row


__all__ += ["ActionNotQualifying", "ActionType", "BadgeInvalid", "TeamAlreadyJoined", "TeamNotOpen", "cycle_clean"]
