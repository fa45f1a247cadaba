import pytest

from apps.core.models import ProgramSettings
from tests.factories import CustomerFactory, RewardFactory, StaffMemberFactory, VipTierFactory
from tests.shopify.test_proxy import redis_down  # noqa: F401  (the same fixture: Redis at a dead port)
from tests.shopify_helpers import proxy_signed_query

SHOP = "alpha-pets.myshopify.com"
OTHER_SHOP = "beta-gadgets.myshopify.com"


@pytest.fixture
def program(merchant):
    program, _ = ProgramSettings.objects.get_or_create(merchant=merchant)
    return program


@pytest.fixture
def support(merchant):
    """A staff member whose role lacks admin:frontend."""
    return StaffMemberFactory(merchant=merchant, shopify_user_id="90002", role="support")


@pytest.fixture
def loyalty(merchant):
    """Tiers and rewards of shop A."""
    silver = VipTierFactory(merchant=merchant, name={"en": "Silver", "ar": "فضي"}, min_lifetime_points=0)
    gold = VipTierFactory(merchant=merchant, name={"en": "Gold", "ar": "ذهبي"}, min_lifetime_points=1000)
    small = RewardFactory(merchant=merchant, name={"en": "$5 off", "ar": "خصم 5$"}, points_cost=300)
    big = RewardFactory(merchant=merchant, name={"en": "$20 off"}, points_cost=1500)
    return {"silver": silver, "gold": gold, "small": small, "big": big}


@pytest.fixture
def shopper(merchant, loyalty):
    return CustomerFactory(
        merchant=merchant,
        shopify_customer_id="6001",
        points_balance=800,
        lifetime_points=600,
        vip_tier=loyalty["silver"],
    )


@pytest.fixture
def foreign(other_merchant):
    """Shop B's tiers, rewards and configuration: none may reach shop A's widgets."""
    b = other_merchant["merchant"]
    VipTierFactory(merchant=b, name={"en": "Beta Diamond"}, min_lifetime_points=10)
    RewardFactory(merchant=b, name={"en": "Beta secret reward"}, points_cost=1)
    ProgramSettings.objects.update_or_create(
        merchant=b,
        defaults={
            "theme_extension_config": {
                "widgets": {
                    "rewards_panel": {
                        "widget": "rewards_panel",
                        "placement": "home_page",
                        "enabled": True,
                        "texts": {"title": {"en": "Beta secret title"}},
                        "colors": {},
                        "variants": [],
                    }
                }
            }
        },
    )
    return other_merchant


def proxy_url(path, shop=SHOP, customer_id=None, **params):
    return f"/proxy/v1/api/{path}?{proxy_signed_query(shop, customer_id, **params)}"
