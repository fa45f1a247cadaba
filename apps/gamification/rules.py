"""Badge rules and streak periods: validation and pure evaluation, no database access.

A badge rule is structured JSON checked against a fixed grammar (RELIABILITY C7 — nothing is
ever evaluated as code):

    {"type": "seasonal", "start": "12-01", "end": "01-15"}   a purchase between two month-days,
                                                              every year (may wrap the new year),
                                                              in the merchant's time zone
    {"type": "streak", "length": 5}                           a streak of N consecutive periods
    {"type": "total_spend", "amount": "500.00"}               net spend at least the amount
    {"type": "order_count", "count": 10}                      at least N orders
    {"type": "first_purchase"}                                the first order
    {"type": "referrals", "count": 3}                         at least N referral conversions

Badge names are merchant text per locale: at least one of the 22 locale keys (the seeds'
CHECK `badge ?| ARRAY[...]`), no unknown key, each a non-empty string of at most 100 characters.
"""

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.core.locales import LOCALES

RULE_TYPES = ("seasonal", "streak", "total_spend", "order_count", "first_purchase", "referrals")
# Rules decided by an order batch; `referrals` is decided by ledger writes and actions.
ORDER_RULES = frozenset({"seasonal", "streak", "total_spend", "order_count", "first_purchase"})
MAX_NAME_LENGTH = 100
MAX_COUNT = 1000
MAX_AMOUNT = Decimal("10000000")


def validate_badge_name(value) -> None:
    """At least one of the 22 locale keys, nothing else, each a short non-empty text."""
    if not isinstance(value, dict) or not value:
        raise ValidationError(_("Enter the badge name as an object keyed by locale."), code="invalid")
    unknown = sorted(str(key) for key in value if key not in LOCALES)
    if unknown:
        raise ValidationError(
            _("Unknown locale: %(locales)s."), code="unknown_locale", params={"locales": ", ".join(unknown)}
        )
    for text in value.values():
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_NAME_LENGTH:
            raise ValidationError(
                _("Each name must be a text of 1 to %(max)s characters."),
                code="invalid",
                params={"max": MAX_NAME_LENGTH},
            )


def badge_name(value: dict, locale: str) -> str:
    """The name in `locale`, else English, else the first locale given (in LOCALES order)."""
    value = value or {}
    if value.get(locale):
        return value[locale]
    if value.get("en"):
        return value["en"]
    return next((value[code] for code in LOCALES if value.get(code)), "")


def _month_day(raw, field: str) -> str:
    if not isinstance(raw, str) or len(raw) != 5 or raw[2] != "-":
        raise ValidationError({field: _("Enter a month and day as MM-DD.")}, code="invalid")
    try:
        month, day = int(raw[:2]), int(raw[3:])
    except ValueError:
        raise ValidationError({field: _("Enter a month and day as MM-DD.")}, code="invalid") from None
    # 29 February is allowed: in other years the window uses 28 February.
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2024, month)[1]:
        raise ValidationError({field: _("Enter a month and day as MM-DD.")}, code="invalid")
    return raw


def _count(raw, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_COUNT:
        raise ValidationError(
            {field: _("Enter a whole number from 1 to %(max)s.") % {"max": MAX_COUNT}}, code="invalid"
        )
    return raw


def rule_clean(rule) -> dict:
    """Validate a badge rule and return its normalised form; raise ValidationError otherwise."""
    if not isinstance(rule, dict):
        raise ValidationError({"rule": _("Enter the rule as a JSON object.")}, code="invalid")
    kind = rule.get("type")
    if kind not in RULE_TYPES:
        raise ValidationError(
            {"rule.type": _("Unknown rule type. Use one of: %(types)s.") % {"types": ", ".join(RULE_TYPES)}},
            code="unknown_rule",
        )
    allowed = {
        "seasonal": {"type", "start", "end"},
        "streak": {"type", "length"},
        "total_spend": {"type", "amount"},
        "order_count": {"type", "count"},
        "first_purchase": {"type"},
        "referrals": {"type", "count"},
    }[kind]
    extra = sorted(set(rule) - allowed)
    if extra:
        raise ValidationError({f"rule.{extra[0]}": _("Unknown field.")}, code="unknown_field")
    if kind == "seasonal":
        start = _month_day(rule.get("start"), "rule.start")
        end = _month_day(rule.get("end"), "rule.end")
        return {"type": kind, "start": start, "end": end}
    if kind == "streak":
        return {"type": kind, "length": _count(rule.get("length"), "rule.length")}
    if kind in ("order_count", "referrals"):
        return {"type": kind, "count": _count(rule.get("count"), "rule.count")}
    if kind == "total_spend":
        raw = rule.get("amount")
        try:
            amount = Decimal(str(raw)) if isinstance(raw, (int, float, str)) and not isinstance(raw, bool) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or not Decimal("0.01") <= amount <= MAX_AMOUNT:
            raise ValidationError({"rule.amount": _("Enter an amount greater than zero.")}, code="invalid")
        return {"type": kind, "amount": str(amount.quantize(Decimal("0.01")))}
    return {"type": kind}


def merchant_zone(merchant) -> ZoneInfo:
    try:
        return ZoneInfo(getattr(merchant, "timezone", "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _month_day_tuple(value: str, year: int) -> tuple[int, int]:
    month, day = int(value[:2]), int(value[3:])
    return month, min(day, calendar.monthrange(year, month)[1])


def in_seasonal_window(rule: dict, moment: datetime, zone: ZoneInfo) -> bool:
    """Whether `moment` falls in the yearly window [start, end] (whole days, both inclusive) in
    the merchant's time zone. A window whose end is before its start wraps the new year."""
    local = moment.astimezone(zone).date()
    today = (local.month, local.day)
    start = _month_day_tuple(rule["start"], local.year)
    end = _month_day_tuple(rule["end"], local.year)
    if start <= end:
        return start <= today <= end
    return today >= start or today <= end


# --- streak periods -------------------------------------------------------------------------

WEEK = "week"
MONTH = "month"


def period_start(moment: datetime, period: str, zone: ZoneInfo) -> date:
    """The first day of the week (ISO, Monday) or month holding `moment`, in the merchant's zone."""
    local = moment.astimezone(zone).date()
    if period == WEEK:
        return local - timedelta(days=local.weekday())
    return local.replace(day=1)


def period_next(start: date, period: str) -> date:
    if period == WEEK:
        return start + timedelta(days=7)
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def period_previous(start: date, period: str) -> date:
    if period == WEEK:
        return start - timedelta(days=7)
    return date(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)


def streak_advance(*, count: int, last: date | None, period_starts: list[date], period: str) -> tuple[int, date | None]:
    """Apply qualifying periods (any order, duplicates allowed) to a streak (count, last period).
    The same period twice counts once; the next period extends; a gap restarts at 1; a period
    older than the last one counted changes nothing (late deliveries never rewrite history)."""
    for start in sorted(set(period_starts)):
        if last is None or start > period_next(last, period):
            count, last = 1, start
        elif start == period_next(last, period):
            count, last = (count if count > 0 else 0) + 1, start
        # start <= last: already counted or older.
    return count, last


def streak_current(*, count: int, last: date | None, today_start: date, period: str) -> int:
    """The streak as of the period starting `today_start`: alive while the last qualifying
    period is this one or the previous one; 0 once a whole period passed without an action."""
    if last is None:
        return 0
    if last >= period_previous(today_start, period):
        return count
    return 0


def cycle_key(moment: datetime, zone: ZoneInfo) -> str:
    """The team cycle (`2025-07`) holding `moment` in the merchant's zone."""
    local = moment.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"
