"""RFM thresholds: a strict grammar for the seeds' strings and a schema for the structured form.

Structured (what is stored and scored)::

    {"method": "thresholds" | "quintiles",
     "recency":   {"5": {"op": "lte", "value": 14}, "4": {...}, "3": {...}, "2": {...}},
     "frequency": {"5": {"op": "gte", "value": 5}, ...},
     "monetary":  {"5": {"op": "gt", "value": 500}, ...},
     "weights":   {"recency": 0.4, "frequency": 0.3, "monetary": 0.3}}

Input may use the seeds' strings: `"<=14"`, `">=5"`, `">500"` — an operator and a plain
decimal number, nothing else. A bare string for a dimension sets its level 5 (the
Champions bar, as in the seeds' example); levels not given keep the base ladder (the
industry preset or the current thresholds). Nothing is ever evaluated.
"""

import itertools
import re
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy as _

from apps.core.errors import ValidationFailed

from .presets import DEFAULT_WEIGHTS, LEVELS

DIMENSIONS = ("recency", "frequency", "monetary")
DIMENSION_LABELS = {
    "recency": _("Recency (days since the last order)"),
    "frequency": _("Frequency (orders)"),
    "monetary": _("Monetary (net spend)"),
}
METHODS = ("thresholds", "quintiles")
KNOWN_KEYS = frozenset({*DIMENSIONS, "method", "weights"})

SYMBOLS = {"<=": "lte", "<": "lt", ">=": "gte", ">": "gt", "≤": "lte", "≥": "gte"}
OP_SYMBOLS = {"lte": "<=", "lt": "<", "gte": ">=", "gt": ">"}
_GRAMMAR = re.compile(r"^\s*(<=|>=|<|>|≤|≥)\s*(\d{1,12}(?:\.\d{1,2})?)\s*$")

# Recency: fewer days is better, so its bars are upper bounds; the others are lower bounds.
ALLOWED_OPS = {"recency": ("lte", "lt"), "frequency": ("gte", "gt"), "monetary": ("gte", "gt")}
RANGES = {
    "recency": (Decimal(0), Decimal(3650)),
    "frequency": (Decimal(0), Decimal(100_000)),
    "monetary": (Decimal(0), Decimal(100_000_000)),
}
INTEGER_DIMENSIONS = ("recency", "frequency")


class InvalidThresholds(ValidationFailed):
    code = "invalid_thresholds"
    default_message = _("The RFM thresholds are not valid.")


def parse_condition(text: str) -> dict:
    """`"<=14"` → `{"op": "lte", "value": 14}`; raises ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    match = _GRAMMAR.match(text)
    if match is None:
        raise ValueError("not an operator and a number")
    number = Decimal(match.group(2))
    value = int(number) if number == number.to_integral_value() else float(number)
    return {"op": SYMBOLS[match.group(1)], "value": value}


def format_condition(condition: dict) -> str:
    """`{"op": "lte", "value": 14}` → `"<=14"` (for people and the shop metafield)."""
    value = condition["value"]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{OP_SYMBOLS[condition['op']]}{value}"


class _Errors:
    def __init__(self):
        self.fields: dict[str, list] = {}

    def add(self, path: str, message) -> None:
        self.fields.setdefault(f"thresholds.{path}", []).append(message)


def _condition(raw, dimension: str, path: str, errors: _Errors) -> dict | None:
    if isinstance(raw, str):
        try:
            condition = parse_condition(raw)
        except ValueError:
            errors.add(path, _('Write a condition such as "<=14" or ">500": an operator and a number.'))
            return None
    elif isinstance(raw, dict) and set(raw) == {"op", "value"}:
        condition = dict(raw)
        if condition["op"] not in OP_SYMBOLS:
            errors.add(path, _("Unknown operator."))
            return None
        value = condition["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.add(path, _("The value must be a number."))
            return None
    else:
        errors.add(path, _('Write a condition such as "<=14" or {"op": "lte", "value": 14}.'))
        return None
    if condition["op"] not in ALLOWED_OPS[dimension]:
        allowed = ", ".join(OP_SYMBOLS[op] for op in ALLOWED_OPS[dimension])
        errors.add(path, _("Use one of these operators here: %(operators)s.") % {"operators": allowed})
        return None
    try:
        number = Decimal(str(condition["value"]))
    except InvalidOperation:
        errors.add(path, _("The value must be a number."))
        return None
    low, high = RANGES[dimension]
    if not number.is_finite() or number < low or number > high:
        errors.add(path, _("The value must be between %(low)s and %(high)s.") % {"low": low, "high": high})
        return None
    if dimension in INTEGER_DIMENSIONS and number != number.to_integral_value():
        errors.add(path, _("The value must be a whole number."))
        return None
    if number.as_tuple().exponent < -2:
        errors.add(path, _("Use at most two decimal places."))
        return None
    condition["value"] = int(number) if number == number.to_integral_value() else float(number)
    return condition


def _ladder(raw, base: dict, dimension: str, errors: _Errors) -> dict | None:
    ladder = {level: dict(base[level]) for level in LEVELS}
    if isinstance(raw, str) or (isinstance(raw, dict) and set(raw) == {"op", "value"}):
        items = [("5", raw)]  # the seeds' single bar: the Champions level
    elif isinstance(raw, dict):
        items = list(raw.items())
    else:
        errors.add(dimension, _("Give a condition, or an object of conditions by score level."))
        return None
    ok = True
    for level, value in items:
        if str(level) not in LEVELS:
            errors.add(f"{dimension}.{level}", _("Score levels are 5, 4, 3 and 2 (level 1 is everything below 2)."))
            ok = False
            continue
        condition = _condition(value, dimension, f"{dimension}.{level}", errors)
        if condition is None:
            ok = False
        else:
            ladder[str(level)] = condition
    if not ok:
        return None
    values = [Decimal(str(ladder[level]["value"])) for level in LEVELS]
    if dimension == "recency":
        monotonic = all(a < b for a, b in itertools.pairwise(values))
        message = _("Recency bars must grow from level 5 to level 2 (a level 5 customer ordered most recently).")
    else:
        monotonic = all(a > b for a, b in itertools.pairwise(values))
        message = _("Frequency and monetary bars must shrink from level 5 to level 2.")
    if not monotonic:
        errors.add(dimension, message)
        return None
    return ladder


def _weights(raw, errors: _Errors) -> dict | None:
    if not isinstance(raw, dict) or not raw or set(raw) - set(DIMENSIONS):
        errors.add("weights", _("Give weights for recency, frequency and monetary."))
        return None
    weights = dict(DEFAULT_WEIGHTS)
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
            errors.add(f"weights.{key}", _("A weight is a number from 0 to 10."))
            return None
        weights[key] = float(value)
    if sum(weights.values()) <= 0:
        errors.add("weights", _("At least one weight must be above zero."))
        return None
    return weights


def thresholds_parse(raw, *, base: dict) -> dict:
    """Validate input thresholds over `base` (structured); raises InvalidThresholds."""
    errors = _Errors()
    if not isinstance(raw, dict):
        raise InvalidThresholds(details={"thresholds": [_("Send the thresholds as a JSON object.")]})
    for key in sorted(set(raw) - KNOWN_KEYS, key=str):
        errors.add(str(key), _("Unknown threshold. Use recency, frequency, monetary, method or weights."))
    result = {
        "method": base.get("method", "thresholds"),
        "weights": dict(base.get("weights") or DEFAULT_WEIGHTS),
    }
    for dimension in DIMENSIONS:
        if dimension in raw:
            result[dimension] = _ladder(raw[dimension], base[dimension], dimension, errors)
        else:
            result[dimension] = {level: dict(base[dimension][level]) for level in LEVELS}
    if "method" in raw:
        if raw["method"] in METHODS:
            result["method"] = raw["method"]
        else:
            errors.add("method", _('The method is "thresholds" or "quintiles".'))
    if "weights" in raw:
        result["weights"] = _weights(raw["weights"], errors)
    if errors.fields:
        raise InvalidThresholds(details=errors.fields)
    return result


def thresholds_display(thresholds: dict) -> dict:
    """The seeds' string form of every bar: {"recency": {"5": "<=14", ...}, ...}."""
    return {
        dimension: {level: format_condition(thresholds[dimension][level]) for level in LEVELS}
        for dimension in DIMENSIONS
    }
