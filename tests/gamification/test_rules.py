"""Badge rules and streak periods: seasonal windows across year boundaries and time zones,
streaks across week and month boundaries and gaps, strict rule validation."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from apps.gamification import rules

WINTER = {"type": "seasonal", "start": "12-01", "end": "01-15"}
TOKYO = ZoneInfo("Asia/Tokyo")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2025, 11, 30, 23, 59, tzinfo=UTC), False),
        (datetime(2025, 12, 1, 0, 0, tzinfo=UTC), True),
        (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), True),
        (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), True),
        (datetime(2026, 1, 15, 23, 59, tzinfo=UTC), True),
        (datetime(2026, 1, 16, 0, 0, tzinfo=UTC), False),
        (datetime(2026, 7, 1, tzinfo=UTC), False),
        (datetime(2030, 12, 24, tzinfo=UTC), True),  # every year
    ],
)
def test_a_window_that_wraps_the_new_year_repeats_every_year(moment, inside):
    assert rules.in_seasonal_window(WINTER, moment, ZoneInfo("UTC")) is inside


def test_the_window_is_read_in_the_merchants_time_zone():
    # 30 Nov 20:00 UTC is already 1 Dec in Tokyo, still 30 Nov in Los Angeles.
    moment = datetime(2025, 11, 30, 20, 0, tzinfo=UTC)
    assert rules.in_seasonal_window(WINTER, moment, TOKYO)
    assert not rules.in_seasonal_window(WINTER, moment, LOS_ANGELES)
    # 16 Jan 03:00 UTC is still 15 Jan in Los Angeles (inside), 16 Jan in Tokyo (outside).
    late = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)
    assert rules.in_seasonal_window(WINTER, late, LOS_ANGELES)
    assert not rules.in_seasonal_window(WINTER, late, TOKYO)


def test_a_window_within_one_year_and_29_february():
    summer = {"type": "seasonal", "start": "06-01", "end": "08-31"}
    assert rules.in_seasonal_window(summer, datetime(2025, 7, 4, tzinfo=UTC), ZoneInfo("UTC"))
    assert not rules.in_seasonal_window(summer, datetime(2025, 9, 1, tzinfo=UTC), ZoneInfo("UTC"))
    leap = {"type": "seasonal", "start": "02-29", "end": "03-01"}
    assert rules.in_seasonal_window(leap, datetime(2025, 2, 28, 12, tzinfo=UTC), ZoneInfo("UTC"))  # 28 Feb stands in
    assert not rules.in_seasonal_window(leap, datetime(2024, 2, 28, 12, tzinfo=UTC), ZoneInfo("UTC"))


def test_week_periods_start_on_monday_in_the_merchants_zone():
    sunday_night_utc = datetime(2026, 1, 4, 20, 0, tzinfo=UTC)  # Sunday in UTC, Monday 5 Jan in Tokyo
    assert rules.period_start(sunday_night_utc, rules.WEEK, ZoneInfo("UTC")) == date(2025, 12, 29)
    assert rules.period_start(sunday_night_utc, rules.WEEK, TOKYO) == date(2026, 1, 5)
    assert rules.period_next(date(2025, 12, 29), rules.WEEK) == date(2026, 1, 5)
    assert rules.period_start(datetime(2026, 1, 1, 3, tzinfo=UTC), rules.MONTH, LOS_ANGELES) == date(2025, 12, 1)
    assert rules.period_next(date(2025, 12, 1), rules.MONTH) == date(2026, 1, 1)
    assert rules.period_previous(date(2026, 1, 1), rules.MONTH) == date(2025, 12, 1)


def test_streaks_grow_across_month_and_year_boundaries_and_restart_after_a_gap():
    months = [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1)]
    assert rules.streak_advance(count=0, last=None, period_starts=months, period=rules.MONTH) == (3, date(2026, 1, 1))
    # The same month again (a duplicate webhook, a second order) counts once.
    assert rules.streak_advance(
        count=3, last=date(2026, 1, 1), period_starts=[date(2026, 1, 1)], period=rules.MONTH
    ) == (
        3,
        date(2026, 1, 1),
    )
    # February skipped: March restarts at 1.
    assert rules.streak_advance(
        count=3, last=date(2026, 1, 1), period_starts=[date(2026, 3, 1)], period=rules.MONTH
    ) == (
        1,
        date(2026, 3, 1),
    )
    # A late order of an older month changes nothing.
    assert rules.streak_advance(
        count=3, last=date(2026, 1, 1), period_starts=[date(2025, 6, 1)], period=rules.MONTH
    ) == (
        3,
        date(2026, 1, 1),
    )


def test_week_streaks_across_the_year_end_and_lazy_expiry():
    weeks = [date(2025, 12, 22), date(2025, 12, 29), date(2026, 1, 5)]
    count, last = rules.streak_advance(count=0, last=None, period_starts=weeks, period=rules.WEEK)
    assert (count, last) == (3, date(2026, 1, 5))
    # Alive this week and the next (the action of the current week may still come) …
    assert rules.streak_current(count=count, last=last, today_start=date(2026, 1, 5), period=rules.WEEK) == 3
    assert rules.streak_current(count=count, last=last, today_start=date(2026, 1, 12), period=rules.WEEK) == 3
    # … broken once a whole week passed without one.
    assert rules.streak_current(count=count, last=last, today_start=date(2026, 1, 19), period=rules.WEEK) == 0


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"type": "birthday"}, "rule.type"),
        ("first_purchase", "rule"),
        ({"type": "seasonal", "start": "13-01", "end": "01-15"}, "rule.start"),
        ({"type": "seasonal", "start": "12-01", "end": "02-30"}, "rule.end"),
        ({"type": "streak", "length": 0}, "rule.length"),
        ({"type": "streak", "length": True}, "rule.length"),
        ({"type": "total_spend", "amount": "abc"}, "rule.amount"),
        ({"type": "order_count", "count": 3, "eval": "__import__('os')"}, "rule.eval"),
    ],
)
def test_bad_rules_are_refused_with_the_field_named(rule, field):
    with pytest.raises(ValidationError) as refused:
        rules.rule_clean(rule)
    assert field in refused.value.message_dict


def test_good_rules_are_normalised():
    assert rules.rule_clean({"type": "total_spend", "amount": 500}) == {"type": "total_spend", "amount": "500.00"}
    assert rules.rule_clean({"type": "first_purchase"}) == {"type": "first_purchase"}


def test_badge_names_need_one_known_locale_and_fall_back_to_english():
    rules.validate_badge_name({"ar": "نجم الموسم"})
    for bad in ({}, {"xx": "Star"}, {"en": ""}, {"en": "x" * 101}, ["en"]):
        with pytest.raises(ValidationError):
            rules.validate_badge_name(bad)
    assert rules.badge_name({"en": "Seasonal Star", "de": "Saisonstern"}, "de") == "Saisonstern"
    assert rules.badge_name({"en": "Seasonal Star"}, "ja") == "Seasonal Star"
    assert rules.badge_name({"he": "כוכב"}, "fr") == "כוכב"
