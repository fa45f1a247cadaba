"""Industry presets of RFM thresholds (the `rfm_benchmarks` rows without a merchant).

Each preset gives, per dimension, the bar for score levels 5, 4, 3 and 2 (level 1 is
everything below level 2). Recency is days since the last order (`<=`), frequency is the
number of orders (`>=`) and monetary the net spend in the shop's currency (`>`). The
reasoning behind each preset is in docs/RFM.md. Pure data: migrations load it.
"""

from django.utils.translation import gettext_lazy as _

DEFAULT_WEIGHTS = {"recency": 0.4, "frequency": 0.3, "monetary": 0.3}
DEFAULT_INDUSTRY = "other"

# slug: (label, recency days, frequency orders, monetary spend), each for levels 5, 4, 3, 2.
_PRESETS = {
    "pet_store": (_("Pet Store"), (14, 30, 60, 120), (5, 4, 3, 2), (500, 250, 100, 40)),
    "electronics": (_("Electronics"), (30, 90, 180, 365), (6, 4, 3, 2), (2000, 1000, 500, 200)),
    "fashion": (_("Apparel"), (21, 45, 90, 180), (8, 5, 3, 2), (800, 400, 200, 80)),
    "beauty": (_("Beauty"), (30, 60, 90, 150), (8, 5, 3, 2), (500, 250, 120, 50)),
    "food": (_("Food & Beverage"), (14, 30, 45, 90), (12, 8, 4, 2), (600, 300, 150, 50)),
    "home": (_("Home & Garden"), (45, 90, 180, 365), (5, 4, 3, 2), (1200, 600, 300, 100)),
    "health_wellness": (_("Health & Wellness"), (30, 60, 90, 180), (10, 6, 3, 2), (600, 300, 150, 60)),
    "jewelry": (_("Jewelry"), (90, 180, 365, 540), (4, 3, 2, 1), (2500, 1200, 600, 250)),
    "sports": (_("Sports & Outdoors"), (30, 60, 120, 240), (6, 4, 3, 2), (800, 400, 200, 80)),
    "books_media": (_("Books & Media"), (30, 60, 120, 240), (10, 6, 4, 2), (300, 150, 75, 30)),
    "other": (_("General retail"), (30, 60, 120, 240), (6, 4, 3, 2), (750, 350, 150, 60)),
}

LEVELS = ("5", "4", "3", "2")


def _ladder(op: str, values) -> dict:
    return {level: {"op": op, "value": value} for level, value in zip(LEVELS, values, strict=True)}


def preset_thresholds(industry: str) -> dict:
    """The structured thresholds of an industry preset (see apps.rfm.thresholds)."""
    _label, recency, frequency, monetary = _PRESETS[industry]
    return {
        "method": "thresholds",
        "recency": _ladder("lte", recency),
        "frequency": _ladder("gte", frequency),
        "monetary": _ladder("gt", monetary),
        "weights": dict(DEFAULT_WEIGHTS),
    }


def industry_label(industry: str):
    entry = _PRESETS.get(industry)
    return entry[0] if entry else industry


INDUSTRIES = tuple(_PRESETS)
INDUSTRY_CHOICES = tuple((slug, entry[0]) for slug, entry in _PRESETS.items())


def preset_id(industry: str) -> str:
    """Stable primary key of a preset row, so references survive re-seeding."""
    return f"bm_preset_{industry}"


def industry_of(merchant) -> str:
    """The preset a merchant starts from: its own industry, or general retail."""
    return merchant.industry if merchant.industry in _PRESETS else DEFAULT_INDUSTRY
