"""Set-based reactions to loyalty changes: streaks, badges and team scores, exactly once.

The receivers of `orders_synced` and `ledger_entries_written` run inside the writing
transaction with whole batches (up to 200 orders from a webhook burst). Each does a handful of
statements per batch, never per order:

- orders: 1 settings read, 1 locked read + 1 insert + 1 update of streaks, 1 read of active
  badges, 1 read of customers, 1 read of held achievements, 1 INSERT … ON CONFLICT DO NOTHING
  RETURNING of new achievements, 1 insert of audit rows, 1 insert of notification outbox rows
  (`notify_many`) — the last three only for what actually changed.
- ledger entries: 1 read of memberships, 1 upsert of team scores (score = score + delta), and
  for referral badges 1 aggregate + the award insert.

Side effects leave after commit: stream entries (one pipeline), PostHog events, one Celery
task that fires the batch's Flow triggers, and the sorted-set refresh of changed teams.

Exactly once: achievements are unique per (merchant, customer, badge) and inserted with
ON CONFLICT DO NOTHING RETURNING, so only rows this transaction created produce audit rows,
notifications and Flow triggers — a duplicate webhook, a replayed batch or a concurrent drain
awards nothing twice. A streak counts each period once.
"""

import json
import logging
from collections import defaultdict
from decimal import Decimal

from celery import shared_task
from django.db import connection, transaction
from django.db.models import F, Sum
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.core.audit import audit_entry
from apps.core.ids import new_id
from apps.core.locales import normalize_locale
from apps.core.models import AuditLog, Customer, PointsTransaction, ReferralLink, TransactionKind
from apps.core.queueing import enqueue_unless_broker_down
from apps.core.streams import stream_append_many_on_commit
from apps.core.tenancy import merchant_scope
from apps.core.tracking import track_on_commit
from apps.notifications.services import notify_many
from apps.shopify.flow import flow_trigger_fire_task

from . import rules
from .leaderboard import leaderboard_refresh_on_commit
from .models import Achievement, ActionType, Badge, GamificationSettings, Streak, TeamLeaderboard, TeamMembership

logger = logging.getLogger(__name__)

PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
TRIGGER_BADGE_AWARDED = "loyalnest-badge-awarded"
TRIGGER_STREAK_REACHED = "loyalnest-streak-reached"
TEAM_SCORE_KINDS = frozenset({TransactionKind.EARN, TransactionKind.ADJUST})


def settings_for(merchant) -> GamificationSettings:
    """The merchant's settings row, or the defaults (unsaved) when never configured."""
    found = GamificationSettings.objects.filter(merchant=merchant).first()
    return found if found is not None else GamificationSettings(merchant=merchant)


# --- Flow triggers, one task per batch ------------------------------------------------------


@shared_task(acks_late=True)
def gamification_flow_triggers_task(*, merchant_id: str, triggers: list[list]) -> int:
    """Fan a batch's Flow triggers out to the Shopify edge's trigger task (one each, retried there)."""
    for handle, payload in triggers:
        flow_trigger_fire_task.delay(merchant_id=merchant_id, handle=handle, payload=payload)
    return len(triggers)


def _flow_triggers_on_commit(merchant, triggers: list[tuple[str, dict]]) -> None:
    if not triggers:
        return
    merchant_id = merchant.pk
    batch = [[handle, payload] for handle, payload in triggers]
    # A dead broker must not fail the order batch after its commit; the triggers are dropped
    # with a warning (Flow triggers are notifications, the awards themselves are stored).
    transaction.on_commit(
        lambda: enqueue_unless_broker_down(
            gamification_flow_triggers_task, kwargs={"merchant_id": merchant_id, "triggers": batch}
        )
    )


def _shopify_customer_reference(customer) -> int | str:
    value = customer.shopify_customer_id
    return int(value) if value and value.isdigit() else value


# --- notifications, one insert per batch -------------------------------------------------------


# --- awards -----------------------------------------------------------------------------------


def _insert_returning(rows: list[dict]) -> set[str]:
    """INSERT the achievement rows, skipping any already held; return the ids actually inserted."""
    if not rows:
        return set()
    columns = [
        "achievement_id",
        "merchant_id",
        "customer_id",
        "badge_definition_id",
        "badge",
        "streak_count",
        "source",
        "created_at",
    ]
    json_cast = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    placeholder = "(" + ", ".join(["%s", "%s", "%s", "%s", json_cast, "%s", "%s", "%s"]) + ")"
    params = []
    for row in rows:
        params.extend(
            [
                row["id"],
                row["merchant_id"],
                row["customer_id"],
                row["badge_id"],
                json.dumps(row["badge"]),
                row["streak_count"],
                row["source"],
                row["created_at"],
            ]
        )
    # Fixed SQL fragments; every value is a parameter.
    insert = f"INSERT INTO {Achievement._meta.db_table} ({', '.join(columns)}) VALUES "  # noqa: S608
    sql = insert + ", ".join([placeholder] * len(rows)) + " ON CONFLICT DO NOTHING RETURNING achievement_id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def awards_apply(
    *, merchant, pairs: list[tuple[Customer, Badge]], streaks: dict[str, int], source: str, extra: dict | None = None
) -> list[Achievement]:
    """Award each (customer, badge) not held yet, exactly once, with its side effects.
    Returns the achievements this call created."""
    if not pairs:
        return []
    held = set(
        Achievement.objects.filter(
            merchant=merchant,
            customer_id__in={customer.pk for customer, _badge in pairs},
            badge_definition_id__in={badge.pk for _customer, badge in pairs},
        ).values_list("customer_id", "badge_definition_id")
    )
    now = timezone.now()
    wanted, seen = [], set()
    for customer, badge in pairs:
        key = (customer.pk, badge.pk)
        if key in held or key in seen:
            continue
        seen.add(key)
        wanted.append(
            {
                "id": new_id("ach"),
                "merchant_id": merchant.pk,
                "customer_id": customer.pk,
                "badge_id": badge.pk,
                "badge": badge.name,
                "streak_count": streaks.get(customer.pk, 0),
                "source": source,
                "created_at": now,
                "customer": customer,
                "definition": badge,
            }
        )
    inserted = _insert_returning(wanted)
    created = []
    audits, streams, triggers, notices = [], [], [], []
    for row in wanted:
        if row["id"] not in inserted:
            continue  # a concurrent transaction awarded it first
        customer, badge = row["customer"], row["definition"]
        achievement = Achievement(
            id=row["id"],
            merchant=merchant,
            customer=customer,
            badge_definition=badge,
            badge=badge.name,
            streak_count=row["streak_count"],
            source=source,
            created_at=now,
        )
        created.append(achievement)
        metadata = {
            "customer_id": customer.pk,
            "badge_id": badge.pk,
            "badge_version": badge.version,
            "streak_count": row["streak_count"],
            "source": source,
            **(extra or {}),
        }
        audits.append(audit_entry(merchant=merchant, action="badge_earned", target=achievement, metadata=metadata))
        streams.append(
            (
                f"badge:{customer.pk}",
                {
                    "customer_id": customer.pk,
                    "achievement_id": achievement.pk,
                    "badge_id": badge.pk,
                    "badge": badge.name,
                    "icon": badge.icon,
                    "created_at": now.isoformat(),
                },
            )
        )
        track_on_commit(
            "badge_earned",
            merchant=merchant,
            distinct_id=customer.pk,
            properties={"badge_id": badge.pk, "rule": badge.rule.get("type"), "source": source},
        )
        locale = normalize_locale(customer.locale) or merchant.primary_locale or "en"
        notices.append((customer, f"badge:{badge.pk}:{customer.pk}", {"badge": rules.badge_name(badge.name, locale)}))
        triggers.append(
            (
                TRIGGER_BADGE_AWARDED,
                {
                    "customer_id": _shopify_customer_reference(customer),
                    "Badge id": badge.pk,
                    "Badge name": rules.badge_name(badge.name, "en"),
                    "Streak count": row["streak_count"],
                },
            )
        )
    if audits:
        AuditLog.objects.bulk_create(audits)
    notify_many(merchant=merchant, type="badge_earned", items=notices)
    stream_append_many_on_commit(merchant_id=merchant.pk, entries=streams)
    _flow_triggers_on_commit(merchant, triggers)
    return created


def _qualifies(badge: Badge, customer: Customer, *, streak: int, orders: list, zone) -> bool:
    rule = badge.rule
    kind = rule.get("type")
    if kind == "first_purchase":
        return customer.orders_count >= 1
    if kind == "order_count":
        return customer.orders_count >= rule["count"]
    if kind == "total_spend":
        return customer.total_spent >= Decimal(rule["amount"])
    if kind == "streak":
        return streak >= rule["length"]
    if kind == "seasonal":
        return any(rules.in_seasonal_window(rule, order.processed_at, zone) for order in orders)
    return False


# --- streaks ----------------------------------------------------------------------------------


def streaks_advance(
    *, merchant, settings: GamificationSettings, periods: dict[str, list], customers: dict[str, Customer], source: str
) -> dict[str, int]:
    """Apply qualifying periods per customer to their streaks (one locked read, one insert, one
    update). Returns every touched customer's current count; sends the side effects of each
    streak that grew."""
    if not periods:
        return {}
    period = settings.streak_period
    existing = {
        streak.customer_id: streak
        for streak in Streak.objects.select_for_update()
        .filter(merchant=merchant, customer_id__in=list(periods))
        .order_by("customer_id")
    }
    new, changed, grown, counts = [], [], [], {}
    for customer_id, starts in periods.items():
        streak = existing.get(customer_id)
        if streak is None:
            streak = Streak(merchant=merchant, customer_id=customer_id)
        count, last = rules.streak_advance(
            count=streak.current_count, last=streak.last_period_date, period_starts=starts, period=period
        )
        counts[customer_id] = count
        if (count, last) == (streak.current_count, streak.last_period_date):
            continue
        grew = last != streak.last_period_date
        streak.current_count, streak.last_period_date = count, last
        streak.longest_count = max(streak.longest_count, count)
        (new if streak._state.adding else changed).append(streak)
        if grew:
            grown.append(streak)
    if new:
        Streak.objects.bulk_create(new)
    if changed:
        now = timezone.now()
        for streak in changed:
            streak.updated_at = now
        Streak.objects.bulk_update(changed, ["current_count", "longest_count", "last_period_date", "updated_at"])
    _streak_effects(merchant=merchant, settings=settings, grown=grown, customers=customers, source=source)
    return counts


def _streak_effects(*, merchant, settings, grown: list[Streak], customers: dict[str, Customer], source: str) -> None:
    audits, streams, triggers, notices = [], [], [], []
    for streak in grown:
        customer = customers.get(streak.customer_id)
        metadata = {
            "customer_id": streak.customer_id,
            "streak_count": streak.current_count,
            "period": settings.streak_period,
            "period_date": streak.last_period_date.isoformat(),
            "source": source,
        }
        audits.append(audit_entry(merchant=merchant, action="streak_earned", target=streak, metadata=metadata))
        streams.append(
            (
                f"streak:{streak.customer_id}",
                {
                    "customer_id": streak.customer_id,
                    "streak_count": streak.current_count,
                    "longest_count": streak.longest_count,
                    "period": settings.streak_period,
                    "last_period_date": streak.last_period_date.isoformat(),
                },
            )
        )
        track_on_commit(
            "streak_earned",
            merchant=merchant,
            distinct_id=streak.customer_id,
            properties={"streak_count": streak.current_count, "period": settings.streak_period, "source": source},
        )
        if customer is None:
            continue
        if streak.current_count >= max(settings.streak_notify_min, 1):
            notices.append(
                (
                    customer,
                    f"streak:{streak.customer_id}:{streak.last_period_date.isoformat()}",
                    {"streak_count": streak.current_count},
                )
            )
        triggers.append(
            (
                TRIGGER_STREAK_REACHED,
                {
                    "customer_id": _shopify_customer_reference(customer),
                    "Streak count": streak.current_count,
                    "Streak period": settings.streak_period,
                },
            )
        )
    if audits:
        AuditLog.objects.bulk_create(audits)
    notify_many(merchant=merchant, type="streak_earned", items=notices)
    stream_append_many_on_commit(merchant_id=merchant.pk, entries=streams)
    _flow_triggers_on_commit(merchant, triggers)


CUSTOMER_FIELDS = ("id", "merchant_id", "shopify_customer_id", "locale", "orders_count", "total_spent")


def orders_gamify(*, merchant, orders: list) -> None:
    """React to a batch of stored orders: streaks from qualifying purchases, then order badges."""
    qualifying = [
        order
        for order in orders
        if order.customer_id is not None and order.financial_status in PAID_STATUSES and order.cancelled_at is None
    ]
    if not qualifying:
        return
    settings = settings_for(merchant)
    badges = [
        badge
        for badge in Badge.objects.filter(merchant=merchant, is_active=True)
        if badge.rule.get("type") in rules.ORDER_RULES
    ]
    counts_streaks = ActionType.PURCHASE in settings.streak_actions
    if not badges and not counts_streaks:
        return
    zone = rules.merchant_zone(merchant)
    by_customer: dict[str, list] = defaultdict(list)
    for order in qualifying:
        by_customer[order.customer_id].append(order)
    customers = {
        customer.pk: customer
        for customer in Customer.objects.filter(
            merchant=merchant, pk__in=list(by_customer), redacted_at__isnull=True
        ).only(*CUSTOMER_FIELDS)
    }
    streaks: dict[str, int] = {}
    if counts_streaks:
        periods = {
            customer_id: [
                rules.period_start(order.processed_at, settings.streak_period, zone) for order in customer_orders
            ]
            for customer_id, customer_orders in by_customer.items()
            if customer_id in customers
        }
        streaks = streaks_advance(
            merchant=merchant, settings=settings, periods=periods, customers=customers, source="order"
        )
    if not badges:
        return
    pairs = [
        (customer, badge)
        for badge in badges
        for customer_id, customer in customers.items()
        if _qualifies(badge, customer, streak=streaks.get(customer_id, 0), orders=by_customer[customer_id], zone=zone)
    ]
    awards_apply(merchant=merchant, pairs=pairs, streaks=streaks, source="order")


def badges_evaluate_for_customer(*, merchant, customer: Customer, streak: int, source: str) -> list[Achievement]:
    """Award the customer every active badge whose rule holds now (streak, spend, count, first
    purchase, referrals); seasonal badges need a purchase in the window and are left to orders."""
    badges = [
        badge
        for badge in Badge.objects.filter(merchant=merchant, is_active=True)
        if badge.rule.get("type") != "seasonal"
    ]
    referrals = None
    pairs = []
    for badge in badges:
        if badge.rule["type"] == "referrals":
            if referrals is None:
                referrals = _referral_conversions(merchant=merchant, customer_ids=[customer.pk]).get(customer.pk, 0)
            if referrals >= badge.rule["count"]:
                pairs.append((customer, badge))
        elif _qualifies(badge, customer, streak=streak, orders=[], zone=None):
            pairs.append((customer, badge))
    return awards_apply(merchant=merchant, pairs=pairs, streaks={customer.pk: streak}, source=source)


def _referral_conversions(*, merchant, customer_ids) -> dict[str, int]:
    return dict(
        ReferralLink.objects.filter(merchant=merchant, customer_id__in=list(customer_ids))
        .values("customer_id")
        .annotate(total=Sum("conversions"))
        .values_list("customer_id", "total")
    )


# --- ledger entries: team scores and referral badges ------------------------------------------


def _team_scores_add(*, merchant, entries: list) -> None:
    """Add the batch's earned points to the teams of their customers for the entries' cycles, and
    take back reversed points (refunds, cancellations) from the team and cycle of the entry they
    reverse, so buying and refunding never lifts a team."""
    zone = rules.merchant_zone(merchant)
    earned: dict[tuple[str, str], int] = defaultdict(int)
    reversals = [e for e in entries if e.kind == TransactionKind.REVERSE and e.reversed_amount > 0 and e.reverses_id]
    originals = {}
    if reversals:
        originals = dict(
            PointsTransaction.objects.filter(
                merchant=merchant,
                pk__in={e.reverses_id for e in reversals},
                kind__in=TEAM_SCORE_KINDS,
                points__gt=0,  # what the team was credited with
            ).values_list("pk", "created_at")
        )
    for entry in entries:
        if entry.kind in TEAM_SCORE_KINDS and entry.points > 0:
            moment = entry.created_at or timezone.now()
            earned[(entry.customer_id, rules.cycle_key(moment, zone))] += entry.points
        elif entry in reversals and entry.reverses_id in originals:
            # What the reversal undid of the earn (its points can be fewer when they were spent).
            cycle = rules.cycle_key(originals[entry.reverses_id], zone)
            earned[(entry.customer_id, cycle)] -= entry.reversed_amount
    if not earned:
        return
    cycles = {cycle for _customer, cycle in earned}
    teams = {
        (customer_id, cycle): team_id
        for customer_id, cycle, team_id in TeamMembership.objects.filter(
            merchant=merchant, customer_id__in={customer for customer, _cycle in earned}, cycle__in=cycles
        ).values_list("customer_id", "cycle", "team_id")
    }
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    for key, points in earned.items():
        team_id = teams.get(key)
        if team_id is not None:
            deltas[(team_id, key[1])] += points
    deltas = {key: delta for key, delta in deltas.items() if delta}
    if not deltas:
        return
    team_scores_increment(merchant=merchant, deltas=deltas)


def team_scores_increment(*, merchant, deltas: dict[tuple[str, str], int]) -> None:
    """score = score + delta for each (team id, cycle), in one upsert; Redis follows after commit."""
    now = timezone.now()
    params, values = [], []
    for (team_id, cycle), delta in sorted(deltas.items()):
        if delta > 0:
            values.append("(%s, %s, %s, %s, %s, %s)")
            params.extend([new_id("tlb"), merchant.pk, team_id, delta, cycle, now])
    # Fixed SQL fragments; every value is a parameter.
    upsert = " ON CONFLICT (merchant_id, team_id, cycle) DO UPDATE SET score = team_leaderboards.score + excluded.score, updated_at = excluded.updated_at"
    insert = "INSERT INTO team_leaderboards (leaderboard_id, merchant_id, team_id, score, cycle, updated_at) VALUES "
    with connection.cursor() as cursor:
        if values:
            cursor.execute(insert + ", ".join(values) + upsert, params)
        for (team_id, cycle), delta in sorted(deltas.items()):
            if delta < 0:  # taken back: never below zero
                TeamLeaderboard.objects.filter(merchant=merchant, team_id=team_id, cycle=cycle).update(
                    score=Greatest(F("score") + delta, 0), updated_at=now
                )
    changed: dict[str, set[str]] = defaultdict(set)
    for team_id, cycle in deltas:
        changed[cycle].add(team_id)
    leaderboard_refresh_on_commit(merchant_id=merchant.pk, changed=dict(changed))


def _referral_badges(*, merchant, entries: list) -> None:
    badges = [
        badge
        for badge in Badge.objects.filter(merchant=merchant, is_active=True)
        if badge.rule.get("type") == "referrals"
    ]
    if not badges:
        return
    customer_ids = {entry.customer_id for entry in entries}
    conversions = _referral_conversions(merchant=merchant, customer_ids=customer_ids)
    if not any(conversions.values()):
        return
    customers = {
        customer.pk: customer
        for customer in Customer.objects.filter(
            merchant=merchant, pk__in=[c for c, n in conversions.items() if n]
        ).only(*CUSTOMER_FIELDS)
    }
    pairs = [
        (customer, badge)
        for badge in badges
        for customer_id, customer in customers.items()
        if conversions.get(customer_id, 0) >= badge.rule["count"]
    ]
    awards_apply(merchant=merchant, pairs=pairs, streaks={}, source="ledger")


def ledger_gamify(*, merchant, entries: list) -> None:
    """React to ledger entries just written: team scores, referral badges."""
    if not entries:
        return
    _team_scores_add(merchant=merchant, entries=entries)
    _referral_badges(merchant=merchant, entries=entries)


# --- receivers (connected in GamificationConfig.ready) ----------------------------------------


def on_orders_synced(sender, *, merchant, orders, **kwargs) -> None:
    with merchant_scope(merchant):
        orders_gamify(merchant=merchant, orders=list(orders))


def on_ledger_entries_written(sender, *, merchant, entries, **kwargs) -> None:
    with merchant_scope(merchant):
        ledger_gamify(merchant=merchant, entries=list(entries))
