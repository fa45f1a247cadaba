"""Badges, streaks and team scores from real order webhooks and ledger writes: exactly once,
set-based, editing a live badge keeps what was earned, nothing crosses tenants."""

from datetime import UTC, datetime

from django.test import Client

from apps.core.models import AuditLog, Customer, PointsTransaction, ReferralLink
from apps.core.services import points_earn, points_redeem, points_reverse
from apps.core.tenancy import merchant_scope
from apps.gamification import services
from apps.gamification.models import Achievement, GamificationSettings, Streak, TeamLeaderboard, TeamMembership
from apps.notifications.models import Notification
from apps.shopify.webhooks.inbox import webhook_inbox_drain
from tests.factories import CustomerFactory
from tests.shopify.webhook_support import iso, order_payload, post_webhook

from .conftest import flow_triggers, make_badge, make_team, queued_tasks


def _order(order_id, *, customer_id=7001, total="100.00", at=None, **kwargs):
    payload = order_payload(order_id, customer_id=customer_id, total=total, **kwargs)
    if at is not None:
        payload["processed_at"] = payload["created_at"] = iso(at)
    return payload


def _deliver(merchant, payloads, *, topic="orders/paid", prefix="w"):
    client = Client()
    for index, payload in enumerate(payloads):
        response = post_webhook(
            client, shop=merchant.shop_domain, topic=topic, payload=payload, webhook_id=f"{prefix}-{index}"
        )
        assert response.status_code == 200
    return webhook_inbox_drain(merchant=merchant, limit=200)


def _achievements(merchant):
    return sorted(
        Achievement.objects.filter(merchant=merchant).values_list(
            "customer__shopify_customer_id", "badge_definition_id"
        )
    )


def test_a_burst_with_duplicate_webhooks_awards_each_badge_once(
    merchant, other_merchant, django_capture_on_commit_callbacks
):
    first = make_badge(merchant, {"type": "first_purchase"}, name={"en": "First!", "de": "Erster!"})
    big = make_badge(merchant, {"type": "total_spend", "amount": "150.00"})
    foreign_badge = make_badge(other_merchant["merchant"], {"type": "first_purchase"})
    payloads = [
        _order(6001, total="100.00"),
        _order(6002, total="80.00"),
        _order(6003, customer_id=7002, total="20.00"),
    ]

    with django_capture_on_commit_callbacks(execute=True):
        _deliver(merchant, payloads, prefix="a")
        # Shopify resends every delivery with new webhook ids, and orders/updated of the same orders.
        _deliver(merchant, payloads, prefix="b")
        _deliver(merchant, payloads, topic="orders/updated", prefix="c")

    assert _achievements(merchant) == sorted([("7001", first.pk), ("7001", big.pk), ("7002", first.pk)])
    assert not Achievement.objects.filter(badge_definition=foreign_badge).exists()
    assert not Achievement.objects.filter(merchant=other_merchant["merchant"]).exists()
    assert AuditLog.objects.filter(merchant=merchant, action="badge_earned").count() == 3
    assert (
        Notification.objects.filter(merchant=merchant, type="badge_earned").values("customer").distinct().count() == 2
    )
    awarded = [payload for handle, payload in flow_triggers() if handle == "loyalnest-badge-awarded"]
    assert sorted((p["customer_id"], p["Badge id"]) for p in awarded) == sorted(
        [(7001, first.pk), (7001, big.pk), (7002, first.pk)]
    )


def test_the_badge_notification_speaks_the_customers_language(merchant):
    make_badge(merchant, {"type": "first_purchase"}, name={"en": "First!", "de": "Erster!"})
    CustomerFactory(merchant=merchant, shopify_customer_id="7001", locale="de")

    _deliver(merchant, [_order(6001)])

    notification = Notification.objects.filter(merchant=merchant, type="badge_earned").first()
    assert notification.locale == "de" and notification.context["badge"] == "Erster!"


def test_unpaid_and_cancelled_orders_earn_nothing(merchant):
    make_badge(merchant, {"type": "first_purchase"})
    _deliver(
        merchant,
        [
            _order(6001, financial_status="pending"),
            _order(6002, customer_id=7002, cancelled_at=datetime(2026, 11, 2, 9, tzinfo=UTC)),
        ],
    )
    assert not Achievement.objects.filter(merchant=merchant).exists()
    assert not Streak.objects.filter(merchant=merchant).exists()


def test_monthly_streak_from_orders_across_the_year_end_and_a_gap(merchant, django_capture_on_commit_callbacks):
    make_badge(merchant, {"type": "streak", "length": 3}, name={"en": "Three in a row"})
    months = [datetime(2025, 11, 20, tzinfo=UTC), datetime(2025, 12, 5, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)]
    with django_capture_on_commit_callbacks(execute=True):
        for index, moment in enumerate(months):
            _deliver(merchant, [_order(6100 + index, at=moment), _order(6200 + index, at=moment)], prefix=f"m{index}")

    customer = Customer.objects.get(merchant=merchant, shopify_customer_id="7001")
    streak = Streak.objects.get(merchant=merchant, customer=customer)
    assert (streak.current_count, streak.longest_count, str(streak.last_period_date)) == (3, 3, "2026-01-01")
    achievement = Achievement.objects.get(merchant=merchant, customer=customer)
    assert achievement.streak_count == 3 and achievement.badge == {"en": "Three in a row"}
    audits = AuditLog.objects.filter(merchant=merchant, action="streak_earned").order_by("created_at")
    assert [a.metadata["streak_count"] for a in audits] == [1, 2, 3]
    reached = [p["Streak count"] for h, p in flow_triggers() if h == "loyalnest-streak-reached"]
    assert reached == [1, 2, 3]
    # Notified from streak length 2 (the default), in the customer's locale.
    assert sorted(
        n.context["streak_count"] for n in Notification.objects.filter(merchant=merchant, type="streak_earned")
    ) == [
        2,
        2,
        3,
        3,
    ]  # email and SMS

    # March after a skipped February: the streak restarts.
    _deliver(merchant, [_order(6300, at=datetime(2026, 3, 2, tzinfo=UTC))], prefix="mar")
    streak.refresh_from_db()
    assert (streak.current_count, streak.longest_count) == (1, 3)


def test_weekly_streaks_follow_the_merchants_time_zone(merchant):
    merchant.timezone = "Asia/Tokyo"
    merchant.save()
    GamificationSettings.objects.create(merchant=merchant, streak_period="week")
    # Sunday 4 Jan 2026 20:00 UTC is Monday 5 Jan in Tokyo: a new week there.
    _deliver(merchant, [_order(6001, at=datetime(2025, 12, 29, 1, tzinfo=UTC))], prefix="w1")
    _deliver(merchant, [_order(6002, at=datetime(2026, 1, 4, 20, tzinfo=UTC))], prefix="w2")

    streak = Streak.objects.get(merchant=merchant)
    assert (streak.current_count, str(streak.last_period_date)) == (2, "2026-01-05")


def test_seasonal_badge_for_a_purchase_in_the_window_only(merchant):
    merchant.timezone = "America/Los_Angeles"
    merchant.save()
    star = make_badge(merchant, {"type": "seasonal", "start": "12-01", "end": "01-15"}, name={"en": "Seasonal Star"})
    _deliver(
        merchant,
        [
            _order(6001, at=datetime(2026, 1, 16, 3, tzinfo=UTC)),  # 15 Jan in Los Angeles: inside
            _order(6002, customer_id=7002, at=datetime(2025, 12, 1, 5, tzinfo=UTC)),  # 30 Nov there: outside
        ],
    )
    assert _achievements(merchant) == [("7001", star.pk)]


def test_editing_a_live_badge_keeps_earned_ones_and_their_names(merchant, gamifier):
    badge = make_badge(merchant, {"type": "order_count", "count": 1}, name={"en": "Regular"})
    _deliver(merchant, [_order(6001)])
    held = Achievement.objects.get(merchant=merchant)

    with merchant_scope(merchant):
        services.badge_update(
            merchant=merchant,
            actor=gamifier,
            badge_id=badge.pk,
            name={"en": "Super regular"},
            icon="crown",
            rule={"type": "order_count", "count": 5},
            is_active=True,
        )
        services.badge_archive(merchant=merchant, actor=gamifier, badge_id=badge.pk)
    _deliver(merchant, [_order(6002, customer_id=7002)], prefix="later")

    held.refresh_from_db()
    assert held.badge == {"en": "Regular"}
    assert list(Achievement.objects.filter(merchant=merchant).values_list("pk", flat=True)) == [held.pk]
    badge.refresh_from_db()
    assert (badge.version, badge.is_active, badge.name) == (3, False, {"en": "Super regular"})


def test_team_scores_come_from_points_earned_in_the_cycle(merchant, other_merchant):
    red = make_team(merchant, "2026-11", "Red")
    blue = make_team(merchant, "2026-11", "Blue")
    ada = CustomerFactory(merchant=merchant, shopify_customer_id="7001")
    bob = CustomerFactory(merchant=merchant, shopify_customer_id="7002")
    loner = CustomerFactory(merchant=merchant)
    foreign_team = make_team(other_merchant["merchant"], "2026-11", "Red")
    TeamMembership.objects.create(merchant=merchant, customer=ada, team=red, cycle="2026-11")
    TeamMembership.objects.create(merchant=merchant, customer=bob, team=blue, cycle="2026-11")

    _deliver(merchant, [_order(6001, total="40.00"), _order(6002, customer_id=7002, total="25.00")])
    with merchant_scope(merchant):
        points_earn(merchant=merchant, customer=ada, points=10, idempotency_key="bonus")
        points_earn(merchant=merchant, customer=ada, points=10, idempotency_key="bonus")  # replay: once
        points_earn(merchant=merchant, customer=loner, points=99, idempotency_key="loner")

    scores = dict(TeamLeaderboard.objects.filter(merchant=merchant, cycle="2026-11").values_list("team_id", "score"))
    assert scores == {red.pk: 50, blue.pk: 25}
    assert TeamLeaderboard.objects.get(merchant=other_merchant["merchant"], team_id=foreign_team.pk).score == 0


def test_refunded_and_cancelled_points_are_taken_back_from_the_team(merchant, other_merchant):
    red = make_team(merchant, "2026-11", "Red")
    ada = CustomerFactory(merchant=merchant, shopify_customer_id="7001")
    TeamMembership.objects.create(merchant=merchant, customer=ada, team=red, cycle="2026-11")
    foreign_team = make_team(other_merchant["merchant"], "2026-11", "Red")

    _deliver(merchant, [_order(6101, total="40.00"), _order(6102, total="30.00")])
    with merchant_scope(merchant):
        earn = PointsTransaction.objects.get(merchant=merchant, idempotency_key="order:6101:earn")
        points_reverse(merchant=merchant, original=earn, idempotency_key="refund-part", points=15)
        spent = points_redeem(merchant=merchant, customer=ada, points=5, idempotency_key="spend").transaction

    score = TeamLeaderboard.objects.get(merchant=merchant, team_id=red.pk, cycle="2026-11").score
    assert score == 70 - 15  # the refund is taken back; spending points is not
    assert spent.points == -5
    with merchant_scope(merchant):
        points_reverse(merchant=merchant, original=earn, idempotency_key="refund-rest")
        other_earn = PointsTransaction.objects.get(merchant=merchant, idempotency_key="order:6102:earn")
        points_reverse(merchant=merchant, original=other_earn, idempotency_key="cancel")
    assert TeamLeaderboard.objects.get(merchant=merchant, team_id=red.pk, cycle="2026-11").score == 0
    assert TeamLeaderboard.objects.get(merchant=other_merchant["merchant"], team_id=foreign_team.pk).score == 0


def test_referral_badges_follow_conversions_on_ledger_writes(merchant):
    badge = make_badge(merchant, {"type": "referrals", "count": 2})
    ada = CustomerFactory(merchant=merchant)
    ReferralLink.objects.create(merchant=merchant, customer=ada, code="ADA123", clicks=5, conversions=2)
    with merchant_scope(merchant):
        points_earn(merchant=merchant, customer=ada, points=50, idempotency_key="referral:1")
    assert list(Achievement.objects.filter(merchant=merchant).values_list("customer_id", "badge_definition_id")) == [
        (ada.pk, badge.pk)
    ]


def test_nightly_reset_sets_broken_streaks_to_zero_only(merchant, other_merchant):
    ada, bob = CustomerFactory(merchant=merchant), CustomerFactory(merchant=merchant)
    Streak.objects.create(
        merchant=merchant, customer=ada, current_count=4, longest_count=4, last_period_date="2026-09-01"
    )
    Streak.objects.create(
        merchant=merchant, customer=bob, current_count=2, longest_count=5, last_period_date="2026-10-01"
    )
    foreign = Streak.objects.create(
        merchant=other_merchant["merchant"],
        customer=other_merchant["customers"][0],
        current_count=3,
        longest_count=3,
        last_period_date="2026-01-01",
    )

    with merchant_scope(merchant):
        reset = services.streaks_reset_broken(merchant=merchant, today=datetime(2026, 11, 20, tzinfo=UTC))

    assert reset == 1
    assert dict(Streak.objects.filter(merchant=merchant).values_list("customer_id", "current_count")) == {
        ada.pk: 0,
        bob.pk: 2,
    }
    assert Streak.objects.get(pk=foreign.pk).current_count == 3


def test_a_new_badge_goes_to_customers_who_already_qualify_once(
    merchant, other_merchant, gamifier, django_capture_on_commit_callbacks
):
    regular = CustomerFactory(merchant=merchant, orders_count=5)
    CustomerFactory(merchant=merchant, orders_count=2)
    streaker = CustomerFactory(merchant=merchant, orders_count=1)
    Streak.objects.create(
        merchant=merchant, customer=streaker, current_count=0, longest_count=4, last_period_date="2025-01-01"
    )
    CustomerFactory(merchant=other_merchant["merchant"], orders_count=9)

    with django_capture_on_commit_callbacks(execute=True), merchant_scope(merchant):
        count_badge = services.badge_create(
            merchant=merchant,
            actor=gamifier,
            name={"en": "Regular"},
            icon="star",
            rule={"type": "order_count", "count": 3},
        )
        streak_badge = services.badge_create(
            merchant=merchant, actor=gamifier, name={"en": "Four"}, icon="fire", rule={"type": "streak", "length": 4}
        )
    assert [kwargs["badge_id"] for kwargs in queued_tasks("apps.gamification.tasks.badge_backfill_task")] == [
        count_badge.pk,
        streak_badge.pk,
    ]

    with merchant_scope(merchant):
        first = services.badge_backfill(merchant=merchant, badge_id=count_badge.pk, batch_size=1)
        again = services.badge_backfill(merchant=merchant, badge_id=count_badge.pk)
        streaks = services.badge_backfill(merchant=merchant, badge_id=streak_badge.pk)

    assert (first, again, streaks) == (1, 0, 1)
    assert sorted(
        Achievement.objects.filter(merchant=merchant).values_list("customer_id", "badge_definition_id")
    ) == sorted([(regular.pk, count_badge.pk), (streaker.pk, streak_badge.pk)])
    assert Achievement.objects.get(badge_definition=streak_badge).source == "backfill"
    assert not Achievement.objects.filter(merchant=other_merchant["merchant"]).exists()
