"""factory_boy factories of the loyalty core."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from apps.core.models import (
    Customer,
    Merchant,
    Order,
    ProgramSettings,
    Reward,
    RewardKind,
    StaffMember,
    StaffRole,
    VipTier,
)
from apps.shopify.models import ShopifyInstallation


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant
        skip_postgeneration_save = True

    shop_domain = factory.Sequence(lambda n: f"shop-{n}.myshopify.com")
    name = factory.Sequence(lambda n: f"Shop {n}")
    industry = "pet_store"
    currency = "USD"
    installed_at = factory.LazyFunction(lambda: datetime.now(UTC))
    settings = factory.RelatedFactory("tests.factories.ProgramSettingsFactory", factory_related_name="merchant")
    # Installed shops hold an offline token, so a session token of theirs authenticates without
    # a token exchange. The tokens are placeholders the fake Shopify does not know: tests that
    # call the Admin API use tests.shopify_helpers.shopify_connect(fake, merchant) for real ones.
    shopify_installation = factory.RelatedFactory(
        "tests.factories.ShopifyInstallationFactory", factory_related_name="merchant"
    )


class ShopifyInstallationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ShopifyInstallation
        django_get_or_create = ("merchant",)

    merchant = factory.SubFactory(MerchantFactory, shopify_installation=None)
    scopes = "read_customers,write_customers,read_orders"
    access_token = factory.Sequence(lambda n: f"shpat_factory_{n:06d}")
    access_token_expires_at = factory.LazyFunction(lambda: datetime.now(UTC) + timedelta(hours=1))
    refresh_token = factory.Sequence(lambda n: f"shprt_factory_{n:06d}")
    refresh_token_expires_at = factory.LazyFunction(lambda: datetime.now(UTC) + timedelta(days=90))


class ProgramSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProgramSettings
        django_get_or_create = ("merchant",)

    merchant = factory.SubFactory(MerchantFactory, settings=None)
    points_per_currency_unit = Decimal("1.00")


class StaffMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMember

    merchant = factory.SubFactory(MerchantFactory)
    shopify_user_id = factory.Sequence(lambda n: str(90000 + n))
    email = factory.Sequence(lambda n: f"staff{n}@example.com")
    name = factory.Faker("name")
    role = StaffRole.OWNER


class VipTierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VipTier

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: {"en": f"Tier {n}", "de": f"Stufe {n}"})
    min_lifetime_points = factory.Sequence(lambda n: 500 * (n + 1))


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    merchant = factory.SubFactory(MerchantFactory)
    shopify_customer_id = factory.Sequence(lambda n: str(7000000 + n))
    email = factory.Sequence(lambda n: f"shopper{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    merchant = factory.SubFactory(MerchantFactory)
    customer = factory.SubFactory(CustomerFactory, merchant=factory.SelfAttribute("..merchant"))
    shopify_order_id = factory.Sequence(lambda n: str(5000000 + n))
    name = factory.Sequence(lambda n: f"#{1000 + n}")
    total_price = Decimal("120.00")
    currency = "USD"
    processed_at = factory.LazyFunction(lambda: datetime.now(UTC))


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    merchant = factory.SubFactory(MerchantFactory)
    name = {"en": "$5 off", "fr": "5 $ de réduction"}
    kind = RewardKind.FIXED_DISCOUNT
    points_cost = 500
    value = Decimal("5.00")
