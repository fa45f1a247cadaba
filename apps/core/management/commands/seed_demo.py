"""Load realistic, deterministic demo data: a demo store with a consistent points ledger, and a few other stores.

Everything is generated up front with numpy (seeded by --seed), then written in one transaction:
PostgreSQL gets the big tables through COPY, other databases (the SQLite first-run default) through
batched INSERTs. Customer aggregates, balances and tiers are computed from the generated orders and
ledger entries, so `points_balance` equals the sum of a customer's entries by construction.
"""

import json
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import repeat

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from faker import Faker
from psycopg.copy import QueuedLibpqWriter

from apps.core.audit import audit_record
from apps.core.ids import new_id
from apps.core.locales import LOCALES
from apps.core.models import (
    Customer,
    Industry,
    LifecycleStage,
    Merchant,
    Order,
    PointsTransaction,
    ProgramSettings,
    Reward,
    RewardKind,
    StaffMember,
    StaffRole,
    TransactionKind,
    VipTier,
)
from apps.core.tenancy import scopes_disabled

DEMO_SHOP_DOMAIN = "demo-loyalnest.myshopify.com"
DEFAULT_ADMIN_PASSWORD = "loyalnest-demo"  # noqa: S105  (a documented demo login, overridable from the env)
HISTORY_DAYS = 730
LAPSED_AFTER_DAYS = 180
US_PER_SECOND = 1_000_000
COPY_CHUNK_ROWS = 50_000
INSERT_BATCH_ROWS = 2_000

# Faker locale behind each of our locales, used only to build small pools of names.
FAKER_LOCALES = {
    "en": "en_US",
    "es": "es_ES",
    "de": "de_DE",
    "ja": "ja_JP",
    "fr": "fr_FR",
    "pt": "pt_BR",
    "ru": "ru_RU",
    "it": "it_IT",
    "nl": "nl_NL",
    "pl": "pl_PL",
    "tr": "tr_TR",
    "fa": "fa_IR",
    "zh-CN": "zh_CN",
    "vi": "vi_VN",
    "id": "id_ID",
    "cs": "cs_CZ",
    "ar": "ar_SA",
    "ko": "ko_KR",
    "uk": "uk_UA",
    "hu": "hu_HU",
    "sv": "sv_SE",
    "he": "he_IL",
}
NAMES_PER_LOCALE = 40


@dataclass(frozen=True)
class StoreSpec:
    domain: str
    name: str
    industry: str
    locale: str
    currency: str
    timezone: str
    plan: str
    median_order: float  # in the store's currency
    points_rate: Decimal  # points per currency unit
    minor_units: int = 2  # JPY has none: totals are whole yen


STORES = (
    StoreSpec(
        DEMO_SHOP_DOMAIN,
        "LoyalNest Demo Store",
        Industry.PET_STORE,
        "en",
        "USD",
        "America/New_York",
        "shopify_plus",
        48.0,
        Decimal("1.00"),
    ),
    StoreSpec(
        "nordlicht-electronics.myshopify.com",
        "Nordlicht Electronics",
        Industry.ELECTRONICS,
        "de",
        "EUR",
        "Europe/Berlin",
        "shopify_plus",
        140.0,
        Decimal("0.50"),
    ),
    StoreSpec(
        "maison-lumiere.myshopify.com",
        "Maison Lumière",
        Industry.FASHION,
        "fr",
        "EUR",
        "Europe/Paris",
        "shopify_plus",
        85.0,
        Decimal("1.00"),
    ),
    StoreSpec(
        "sakura-beauty.myshopify.com",
        "Sakura Beauty",
        Industry.BEAUTY,
        "ja",
        "JPY",
        "Asia/Tokyo",
        "advanced",
        6200.0,
        Decimal("0.01"),
        minor_units=0,
    ),
    StoreSpec(
        "verde-mercado.myshopify.com",
        "Verde Mercado",
        Industry.FOOD,
        "es",
        "EUR",
        "Europe/Madrid",
        "shopify",
        36.0,
        Decimal("2.00"),
    ),
    StoreSpec(
        "oak-and-hearth.myshopify.com",
        "Oak & Hearth",
        Industry.HOME,
        "en",
        "GBP",
        "Europe/London",
        "shopify_plus",
        110.0,
        Decimal("1.00"),
    ),
    StoreSpec(
        "summit-outfitters.myshopify.com",
        "Summit Outfitters",
        Industry.SPORTS,
        "en",
        "CAD",
        "America/Toronto",
        "shopify_plus",
        95.0,
        Decimal("1.00"),
    ),
)

# (min lifetime points, name per locale, perks). Thresholds are in points, so they suit every rate.
TIERS = (
    (
        250,
        {"en": "Bronze", "es": "Bronce", "de": "Bronze", "fr": "Bronze", "ja": "ブロンズ", "ar": "برونزي", "he": "ארד"},
        {"points_multiplier": 1.0},
    ),
    (
        1_000,
        {"en": "Silver", "es": "Plata", "de": "Silber", "fr": "Argent", "ja": "シルバー", "ar": "فضي", "he": "כסף"},
        {"points_multiplier": 1.25, "free_shipping": True},
    ),
    (
        3_000,
        {"en": "Gold", "es": "Oro", "de": "Gold", "fr": "Or", "ja": "ゴールド", "ar": "ذهبي", "he": "זהב"},
        {"points_multiplier": 1.5, "free_shipping": True, "birthday_gift": True},
    ),
    (
        8_000,
        {
            "en": "Platinum",
            "es": "Platino",
            "de": "Platin",
            "fr": "Platine",
            "ja": "プラチナ",
            "ar": "بلاتيني",
            "he": "פלטינה",
        },
        {"points_multiplier": 2.0, "free_shipping": True, "birthday_gift": True, "early_access": True},
    ),
)


def _rewards(currency: str, minor_units: int) -> list[tuple]:
    """(points cost, kind, value, name per locale) of a store's rewards, in its currency."""
    off = 5 * (100 if minor_units == 0 else 1)
    return [
        (
            200,
            RewardKind.FREE_SHIPPING,
            Decimal(0),
            {"en": "Free shipping", "es": "Envío gratis", "de": "Gratisversand"},
        ),
        (
            500,
            RewardKind.FIXED_DISCOUNT,
            Decimal(off),
            {"en": f"{off} {currency} off", "fr": f"{off} {currency} de réduction", "ja": f"{off} {currency} 割引"},
        ),
        (1_000, RewardKind.PERCENT_DISCOUNT, Decimal(10), {"en": "10% off", "de": "10 % Rabatt", "ar": "خصم 10٪"}),
        (
            2_500,
            RewardKind.FREE_PRODUCT,
            Decimal(0),
            {"en": "A free gift", "fr": "Un cadeau offert", "he": "מתנה חינם"},
        ),
    ]


# --- Columns of a bulk table: numpy arrays, lists of text, or one constant value.


class Money:
    """Amounts in minor units (cents), written as decimals with two places."""

    def __init__(self, cents: np.ndarray):
        self.cents = cents


class Timestamps:
    """UTC instants in microseconds since the epoch; `null` marks NULLs."""

    def __init__(self, us: np.ndarray, null: np.ndarray | None = None):
        self.us = us
        self.null = null


class Const:
    def __init__(self, value):
        self.value = value


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pg_text(column, start: int, stop: int):
    """Rows [start, stop) of one column as PostgreSQL COPY text values (NULL is \\N)."""
    if isinstance(column, Const):
        value = column.value
        if value is None:
            return repeat("\\N")
        if isinstance(value, bool):
            return repeat("t" if value else "f")
        if isinstance(value, dict | list):
            return repeat(json.dumps(value))
        return repeat(str(value))
    if isinstance(column, Money):
        cents = column.cents[start:stop]
        whole = (cents // 100).astype(str)
        frac = np.strings.zfill((cents % 100).astype(str), 2)
        return np.strings.add(np.strings.add(whole, "."), frac).tolist()
    if isinstance(column, Timestamps):
        text = np.datetime_as_string(column.us[start:stop].astype("datetime64[us]"), unit="us")
        if column.null is not None:
            text = np.where(column.null[start:stop], "\\N", text)
        return text.tolist()
    if isinstance(column, np.ndarray):
        if column.dtype == object:
            return ["\\N" if value is None else value for value in column[start:stop].tolist()]
        return column[start:stop].astype(str).tolist()
    return ["\\N" if value is None else value for value in column[start:stop]]


def _py_values(column, count: int) -> list:
    """One column as Python values, for databases without COPY."""
    if isinstance(column, Const):
        return [column.value] * count
    if isinstance(column, Money):
        return [Decimal(int(cents)).scaleb(-2) for cents in column.cents]
    if isinstance(column, Timestamps):
        null = column.null if column.null is not None else np.zeros(len(column.us), dtype=bool)
        return [
            None if is_null else EPOCH + timedelta(microseconds=int(us))
            for us, is_null in zip(column.us.tolist(), null.tolist(), strict=True)
        ]
    if isinstance(column, np.ndarray):
        return column.tolist()
    return list(column)


PHASES: dict[str, float] = {}


@contextmanager
def _phase(name: str):
    """Add the wall time of a block to PHASES (printed with --verbosity 2)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - started


def bulk_write(model, columns: dict, count: int) -> None:
    """Write `count` rows of `model` given column -> values: COPY on PostgreSQL, batched INSERTs elsewhere."""
    if not count:
        return
    with _phase(f"write {model._meta.db_table}"):
        if connection.vendor == "postgresql":
            _copy_rows(model, columns, count)
        else:
            _insert_rows(model, columns, count)


def _copy_rows(model, columns: dict, count: int) -> None:
    names = list(columns)
    sql = f"COPY {model._meta.db_table} ({', '.join(names)}) FROM STDIN"
    with connection.cursor() as cursor:
        raw = cursor.cursor
        # A writer thread sends each chunk while the next one is being formatted, so Python and
        # the PostgreSQL backend work on the two cores at once.
        with raw.copy(sql, writer=QueuedLibpqWriter(raw)) as copy:
            for start in range(0, count, COPY_CHUNK_ROWS):
                stop = min(start + COPY_CHUNK_ROWS, count)
                texts = [_pg_text(columns[name], start, stop) for name in names]
                rows = zip(*texts, strict=False)  # constant columns repeat endlessly
                copy.write("".join(["\t".join(row) + "\n" for row in rows]).encode())


def _insert_rows(model, columns: dict, count: int) -> None:
    # bulk_create would overwrite the historical created_at (auto_now_add), so insert the
    # values directly, adapted by the model's own fields exactly as the ORM would.
    names = list(columns)
    fields = {field.column: field for field in model._meta.concrete_fields}
    prepared = [
        [fields[name].get_db_prep_save(value, connection) for value in _py_values(columns[name], count)]
        for name in names
    ]
    placeholders = ", ".join(["%s"] * len(names))
    # Table and column names come from the model's own metadata, never from input.
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) VALUES ({placeholders})"  # noqa: S608
    rows = list(zip(*prepared, strict=True))
    with connection.cursor() as cursor:
        for start in range(0, count, INSERT_BATCH_ROWS):
            cursor.executemany(sql, rows[start : start + INSERT_BATCH_ROWS])


CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)


def _base32(values: np.ndarray, width: int) -> np.ndarray:
    """Crockford base32 of non-negative integers, fixed width, as a numpy str array."""
    digits = np.empty((len(values), width), dtype=np.uint8)
    for position in range(width):
        digits[:, width - 1 - position] = CROCKFORD[(values >> np.uint64(5 * position)) & np.uint64(31)]
    return digits.view(f"S{width}").ravel().astype(f"U{width}")


def _ids(prefix: str, count: int) -> np.ndarray:
    """`count` ids exactly as consecutive new_id(prefix) calls make them, generated in bulk.

    python-ulid is monotonic within a millisecond (the random part is incremented), so a loop of
    new_id() yields one timestamp, one random start and consecutive values; at 6 µs per call that
    loop alone took longer than the load budget, so the same sequence is built here with numpy.
    """
    with _phase("ids"):
        sample = new_id(prefix)  # the current timestamp and the exact format
        upper = _base32(np.array([secrets.randbits(40)], dtype=np.uint64), 8)[0]
        head = sample[: len(prefix) + 1 + 10] + upper  # prefix, "_", 48-bit time, upper 40 random bits
        low_start = secrets.randbelow((1 << 40) - count - 1)
        low = np.arange(count, dtype=np.uint64) + np.uint64(low_start)
        return np.strings.add(head, _base32(low, 8)).astype(object)


def _group_starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _grouped_cumsum(values: np.ndarray, group: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running sum of `values` restarting at each group (rows are sorted by group)."""
    total = np.cumsum(values)
    before = np.concatenate(([0], total))[starts]
    return total - before[group]


BULK_MODELS = (Customer, Order, PointsTransaction)
TRIGGER_TYPE_INSERT = 1 << 2  # pg_trigger.tgtype bit


def _can_skip_row_triggers() -> bool:
    """Whether the bulk load may run without per-row triggers (PostgreSQL superuser, no insert triggers).

    Row by row, the foreign-key triggers cost more than the whole COPY (millions of lookups at
    commit). Every row the loaded rows reference is created in this same transaction, so nothing
    can delete it concurrently, and `_verify_references` checks all of them set-wise before commit
    (what pg_restore --disable-triggers relies on). Any other INSERT trigger keeps the slow path.
    """
    if connection.vendor != "postgresql":
        return False
    tables = [model._meta.db_table for model in BULK_MODELS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = ANY(%s::regclass[]) AND NOT tgisinternal"
            " AND tgtype & %s <> 0",
            [tables, TRIGGER_TYPE_INSERT],
        )
        return cursor.fetchone()[0] == 0


def _verify_references(merchant_id: str) -> None:
    """Fail unless every foreign key of the merchant's bulk-loaded rows points at an existing row."""
    with connection.cursor() as cursor:
        # Enough memory for the hash anti-joins over a million rows to stay off disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        for model in BULK_MODELS:
            for field in model._meta.concrete_fields:
                # The merchant reference is the filter itself (and the merchant was just created).
                if not field.is_relation or field.name == "merchant":
                    continue
                target = field.related_model
                # Names come from model metadata; the merchant id is a parameter.
                cursor.execute(
                    f"SELECT 1 FROM {model._meta.db_table} t WHERE t.merchant_id = %s AND t.{field.column} IS NOT NULL"  # noqa: S608
                    f" AND NOT EXISTS (SELECT 1 FROM {target._meta.db_table} r"
                    f" WHERE r.{target._meta.pk.column} = t.{field.column}) LIMIT 1",
                    [merchant_id],
                )
                if cursor.fetchone():
                    raise CommandError(f"Generated {model._meta.db_table}.{field.column} points at a missing row.")


@dataclass
class StoreData:
    customers: int
    orders: int
    entries: int
    points: int
    revenue_cents: int


class Command(BaseCommand):
    help = "Load deterministic demo data (a demo store with customers, orders and a consistent points ledger)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=5_000, help="Customers in total, over all stores.")
        parser.add_argument("--orders-per-customer", type=float, default=6.0, help="Average orders per customer.")
        parser.add_argument("--seed", type=int, default=42, help="Same seed, same data.")
        parser.add_argument("--merchants", type=int, default=4, help=f"Stores, the demo store first (1–{len(STORES)}).")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the demo store already exists.")

    def handle(self, *args, customers, orders_per_customer, seed, merchants, if_empty, **options):
        if customers < 0 or orders_per_customer < 0:
            raise CommandError("--customers and --orders-per-customer must not be negative.")
        if not 1 <= merchants <= len(STORES):
            raise CommandError(f"--merchants must be between 1 and {len(STORES)}.")
        specs = STORES[:merchants]
        with scopes_disabled():
            if Merchant.objects.filter(shop_domain=DEMO_SHOP_DOMAIN).exists():
                if if_empty:
                    self.stdout.write(f"Demo data already loaded ({DEMO_SHOP_DOMAIN}); nothing to do.")
                    return
                raise CommandError(
                    f"{DEMO_SHOP_DOMAIN} already exists. Use a fresh database, or --if-empty to skip seeding."
                )
            taken = list(
                Merchant.objects.filter(shop_domain__in=[s.domain for s in specs]).values_list("shop_domain", flat=True)
            )
            if taken:
                raise CommandError(f"These demo shops already exist: {', '.join(sorted(taken))}.")
            started = time.monotonic()
            # The small stores get 2% of the customers each; the demo store holds the rest.
            others = customers // 50 if customers >= 50 * (merchants - 1) else 0
            shares = [customers - others * (merchants - 1)] + [others] * (merchants - 1)
            now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            totals = StoreData(0, 0, 0, 0, 0)
            PHASES.clear()
            with _phase("total"), transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        # Demo data can be regenerated: no need to wait for the WAL flush at commit.
                        cursor.execute("SET LOCAL synchronous_commit = off")
                        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
                for index, (spec, count) in enumerate(zip(specs, shares, strict=True)):
                    data = self._seed_store(spec, index, count, orders_per_customer, seed, now)
                    for field in ("customers", "orders", "entries", "points", "revenue_cents"):
                        setattr(totals, field, getattr(totals, field) + getattr(data, field))
                password = self._ensure_admin()
                PHASES["commit"] = -time.perf_counter()
            PHASES["commit"] += time.perf_counter()
            elapsed = time.monotonic() - started
        self.stdout.write(
            f"Seeded {merchants} stores: {totals.customers} customers, {totals.orders} orders, "
            f"{totals.entries} ledger entries in {elapsed:.1f}s (seed {seed})."
        )
        if options["verbosity"] >= 2:
            for name, seconds in PHASES.items():
                self.stdout.write(f"  {name}: {seconds:.2f}s")
        self.stdout.write(f"Demo store: {DEMO_SHOP_DOMAIN} (staff user 'demo-owner', role owner).")
        if password is None:
            self.stdout.write("Django admin: /admin/ as 'admin' (existing user, password unchanged).")
        else:
            self.stdout.write(f"Django admin: /admin/ as 'admin', password '{password}'.")

    def _ensure_admin(self) -> str | None:
        """Create the LoyalNest staff superuser once; its password comes from DEMO_ADMIN_PASSWORD."""
        user_model = get_user_model()
        if user_model.objects.filter(username="admin").exists():
            return None
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
        user_model.objects.create_superuser(username="admin", email="admin@loyalnest.example", password=password)
        return password

    def _seed_store(self, spec: StoreSpec, index: int, count: int, average_orders: float, seed: int, now) -> StoreData:
        """Create one store's configuration rows, then generate and bulk-write its customers, orders and ledger."""
        rng = np.random.default_rng([seed, index])
        merchant = Merchant.objects.create(
            shop_domain=spec.domain,
            name=spec.name,
            industry=spec.industry,
            shopify_plan=spec.plan,
            primary_locale=spec.locale,
            currency=spec.currency,
            timezone=spec.timezone,
            installed_at=now - timedelta(days=HISTORY_DAYS + 30),
        )
        ProgramSettings.objects.create(
            merchant=merchant,
            points_per_currency_unit=spec.points_rate,
            signup_points=100,
            referral_advocate_points=500,
            referral_friend_points=250,
        )
        tiers = [
            VipTier.objects.create(merchant=merchant, name=name, min_lifetime_points=threshold, perks=perks)
            for threshold, name, perks in TIERS
        ]
        rewards = [
            Reward.objects.create(merchant=merchant, name=name, kind=kind, points_cost=cost, value=value)
            for cost, kind, value, name in _rewards(spec.currency, spec.minor_units)
        ]
        owner = StaffMember.objects.create(
            merchant=merchant,
            shopify_user_id="demo-owner" if spec.domain == DEMO_SHOP_DOMAIN else f"owner-{index}",
            email=f"owner@{spec.domain.split('.')[0]}.example",
            name="Demo Owner",
            role=StaffRole.OWNER,
        )
        skip_row_triggers = _can_skip_row_triggers()
        if skip_row_triggers:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        data = self._generate(merchant, spec, tiers, rewards, count, average_orders, rng, now)
        if skip_row_triggers:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = origin")
            with _phase("verify references"):
                _verify_references(merchant.pk)
        audit_record(
            merchant=merchant,
            actor=owner,
            action="demo_data_seeded",
            target=merchant,
            metadata={"customers": data.customers, "orders": data.orders, "entries": data.entries},
        )
        return data

    def _generate(self, merchant, spec, tiers, rewards, n, average_orders, rng, now) -> StoreData:
        """Generate customers, two years of orders and their ledger as arrays, then write them."""
        now_us = int(now.timestamp()) * US_PER_SECOND
        day_us = 86_400 * US_PER_SECOND

        # Customers: who they are.
        locale_weights = np.ones(len(LOCALES))
        locale_weights[LOCALES.index(spec.locale)] += 25
        locale_weights[LOCALES.index("en")] += 10
        locale_index = rng.choice(len(LOCALES), size=n, p=locale_weights / locale_weights.sum())
        first_names, last_names = self._name_pools(int(rng.integers(1 << 31)))
        pick_first = rng.integers(NAMES_PER_LOCALE, size=n)
        pick_last = rng.integers(NAMES_PER_LOCALE, size=n)
        customer_numbers = 7_000_000_000_000 + np.cumsum(rng.integers(1, 400, size=n))

        # How many orders each customer placed: some never ordered, many bought once, the rest repeat.
        kind = rng.choice(3, size=n, p=[0.04, 0.30, 0.66])  # 0 none, 1 one-time, 2 repeat
        repeat_mean = (average_orders - 0.30) / 0.66
        if repeat_mean >= 2:
            # Negative binomial (gamma-Poisson): a long tail of loyal customers.
            extra = rng.poisson(rng.gamma(1.2, (repeat_mean - 2) / 1.2, size=n))
            counts = np.where(kind == 0, 0, np.where(kind == 1, 1, 2 + extra))
        else:
            counts = rng.poisson(average_orders, size=n)
        counts = counts.astype(np.int64)

        # When: each customer is active over a window of the last two years; a share has lapsed.
        joined_days = HISTORY_DAYS * rng.beta(1.3, 1.0, size=n)
        lapsed = (rng.random(n) < 0.22) & (joined_days > LAPSED_AFTER_DAYS + 20)
        left_days = np.where(lapsed, rng.uniform(LAPSED_AFTER_DAYS + 10, np.maximum(joined_days, 200)), 0.0)
        window_start = now_us - (joined_days * day_us).astype(np.int64)
        window_end = now_us - (left_days * day_us).astype(np.int64) - 3_600 * US_PER_SECOND
        total_orders = int(counts.sum())
        owner = np.repeat(np.arange(n), counts)
        starts = _group_starts(counts)
        rank = np.arange(total_orders) - starts[owner]
        span = np.maximum(window_end - window_start, 0)[owner]
        offset = (rng.random(total_orders) * span).astype(np.int64)
        offset[counts[owner] == 1] = 0  # one-time buyers order when they join
        # Sort each customer's orders by time, then keep them at least a minute apart.
        order_time = window_start[owner] + offset
        order_time = order_time[np.lexsort((order_time, owner))]
        order_time = (order_time // US_PER_SECOND + 60 * rank) * US_PER_SECOND
        # Customers with very many orders must still end before now.
        order_time = np.minimum(order_time, now_us - 60 * US_PER_SECOND * (counts[owner] - rank))

        # How much: log-normal amounts around the store's median, some customers spend more.
        scale = 10**spec.minor_units
        customer_factor = rng.lognormal(0.0, 0.35, size=n)
        amount = rng.lognormal(np.log(spec.median_order), 0.55, size=total_orders) * customer_factor[owner]
        minor = np.maximum(np.round(amount * scale), scale).astype(np.int64)
        cents = minor * (100 // scale)
        rate_hundredths = int(spec.points_rate * 100)
        points = cents * rate_hundredths // 10_000  # = floor(total × rate), as points_for_amount

        # Order numbers follow time across the store, like Shopify's.
        by_time = np.argsort(order_time, kind="stable")
        number = np.empty(total_orders, dtype=np.int64)
        number[by_time] = np.arange(total_orders)
        # Shopify ids in insertion order keep the unique indexes on them append-only (fast to load);
        # the order names (#1001…) follow time.
        shopify_order_id = (5_000_000_000_000 + np.arange(total_orders, dtype=np.int64) * 7).astype(str)
        is_last = np.zeros(total_orders, dtype=bool)
        last_index = starts + counts - 1
        is_last[last_index[counts > 0]] = True
        refunded = is_last & (points > 0) & (rng.random(total_orders) < 0.03)
        refunded_cents = np.where(refunded, cents, 0)

        # Ledger: one earn per order worth points, redemptions between orders, refunds reversed.
        earn = points > 0
        next_time = np.where(is_last, now_us, np.roll(order_time, -1))
        reward_costs = np.array([r.points_cost for r in rewards], dtype=np.int64)
        wants = (rng.random(total_orders) < 0.15) & ~(is_last & refunded)
        choice = rng.choice(len(rewards), size=total_orders, p=[0.4, 0.3, 0.2, 0.1])
        cost = np.where(wants, reward_costs[choice], 0)
        # Keep a redemption only while earned points cover all redemptions so far; dropping one
        # only lowers later totals, so every kept redemption leaves the balance >= 0.
        earned_so_far = _grouped_cumsum(points, owner, starts)
        spent_so_far = _grouped_cumsum(cost, owner, starts)
        redeem = wants & (spent_so_far <= earned_so_far)

        order_ids = np.array(_ids("ord", total_orders), dtype=object)
        earn_at = order_time + rng.integers(1, 20, size=total_orders) * US_PER_SECOND
        gap = next_time - order_time
        redeem_at = (
            order_time + 30 * US_PER_SECOND + (rng.random(total_orders) * np.maximum(gap - 60e6, 0)).astype(np.int64)
        )
        reverse_at = redeem_at  # refunded last orders never have a redemption after them

        earn_rows = np.flatnonzero(earn)
        redeem_rows = np.flatnonzero(redeem)
        reverse_rows = np.flatnonzero(refunded)
        earn_ids = np.array(_ids("ptx", len(earn_rows)), dtype=object)
        earn_id_of_order = np.empty(total_orders, dtype=object)
        earn_id_of_order[earn_rows] = earn_ids
        entry_customer = np.concatenate([owner[earn_rows], owner[redeem_rows], owner[reverse_rows]])
        entry_time = np.concatenate([earn_at[earn_rows], redeem_at[redeem_rows], reverse_at[reverse_rows]])
        entry_points = np.concatenate([points[earn_rows], -cost[redeem_rows], -points[reverse_rows]])
        entry_kind = np.concatenate(
            [
                np.full(len(earn_rows), TransactionKind.EARN.value, dtype=object),
                np.full(len(redeem_rows), TransactionKind.REDEEM.value, dtype=object),
                np.full(len(reverse_rows), TransactionKind.REVERSE.value, dtype=object),
            ]
        )
        entry_order = np.concatenate([order_ids[earn_rows], np.full(len(redeem_rows), None), order_ids[reverse_rows]])
        reward_ids = np.array([r.pk for r in rewards], dtype=object)
        entry_reward = np.concatenate(
            [np.full(len(earn_rows), None), reward_ids[choice[redeem_rows]], np.full(len(reverse_rows), None)]
        )
        entry_reverses = np.concatenate(
            [np.full(len(earn_rows) + len(redeem_rows), None), earn_id_of_order[reverse_rows]]
        )
        entry_reversed_amount = np.concatenate(
            [np.zeros(len(earn_rows) + len(redeem_rows), dtype=np.int64), points[reverse_rows]]
        )
        entry_key = np.concatenate(
            [
                np.strings.add("order:", shopify_order_id[earn_rows]),
                np.strings.add("redeem:", shopify_order_id[redeem_rows]),
                np.strings.add("refund:", shopify_order_id[reverse_rows]),
            ]
        ).astype(object)
        entry_ids = np.concatenate(
            [earn_ids, np.array(_ids("ptx", len(redeem_rows) + len(reverse_rows)), dtype=object)]
        )
        # Each customer's entries in time order, to compute the running balance.
        order_of_entries = np.lexsort((entry_time, entry_customer))
        entry_customer = entry_customer[order_of_entries]
        entry_points = entry_points[order_of_entries]
        entry_counts = np.bincount(entry_customer, minlength=n)
        entry_starts = _group_starts(entry_counts)
        balance_after = _grouped_cumsum(entry_points, entry_customer, entry_starts)
        if len(balance_after) and balance_after.min() < 0:
            raise CommandError("Generated ledger would go below zero; this is a bug in seed_demo.")

        # Customers' cached aggregates, from the same arrays.
        balance = np.bincount(entry_customer, weights=entry_points, minlength=n).astype(np.int64)
        lifetime = (
            np.bincount(owner[earn_rows], weights=points[earn_rows], minlength=n)
            - np.bincount(owner[reverse_rows], weights=points[reverse_rows], minlength=n)
        ).astype(np.int64)
        thresholds = np.array([t.min_lifetime_points for t in tiers])
        tier_index = np.searchsorted(thresholds, lifetime, side="right") - 1
        tier_ids = np.array([None, *[t.pk for t in tiers]], dtype=object)[tier_index + 1]
        spent_cents = np.bincount(owner, weights=cents - refunded_cents, minlength=n).astype(np.int64)
        has_orders = counts > 0
        last_order_at = np.where(has_orders, order_time[np.maximum(last_index, 0)] if total_orders else 0, 0)
        first_order_at = np.where(
            has_orders, order_time[np.minimum(starts, max(total_orders - 1, 0))] if total_orders else 0, 0
        )
        joined_at = np.where(has_orders, first_order_at, window_start) - (rng.random(n) * 14 * day_us).astype(np.int64)
        churned = has_orders & (last_order_at < now_us - LAPSED_AFTER_DAYS * day_us)
        stage = np.where(
            churned,
            LifecycleStage.CHURNED.value,
            np.where(
                tier_index >= 0,
                LifecycleStage.VIP.value,
                np.where(counts >= 2, LifecycleStage.REPEAT_BUYER.value, LifecycleStage.NEW_LEAD.value),
            ),
        )
        customer_ids = _ids("cus", n)
        customer_id_array = np.array(customer_ids, dtype=object)
        locale_codes = np.array(LOCALES, dtype=object)[locale_index]
        first = [first_names[loc][i] for loc, i in zip(locale_codes, pick_first.tolist(), strict=True)]
        last = [last_names[loc][i] for loc, i in zip(locale_codes, pick_last.tolist(), strict=True)]
        numbers_text = customer_numbers.astype(str)
        emails = np.strings.add(np.strings.add("shopper.", numbers_text), "@example.com")
        merchant_id = Const(merchant.pk)
        # Marketing consent as Shopify reports it: most shoppers opted in to email, fewer to SMS
        # (those have a phone number).
        email_consent = np.where(rng.random(n) < 0.6, "subscribed", "not_subscribed")
        sms_opted_in = rng.random(n) < 0.25
        phones = np.where(sms_opted_in, np.strings.add("+1555", np.char.zfill(numbers_text, 7)), "")

        bulk_write(
            Customer,
            {
                "id": customer_ids,
                "merchant_id": merchant_id,
                "shopify_customer_id": numbers_text,
                "email": emails.tolist(),
                "first_name": first,
                "last_name": last,
                "phone": phones.tolist(),
                "email_marketing_consent": email_consent.tolist(),
                "sms_marketing_consent": np.where(sms_opted_in, "subscribed", "not_subscribed").tolist(),
                "locale": locale_codes.tolist(),
                "points_balance": balance,
                "lifetime_points": lifetime,
                "vip_tier_id": tier_ids.tolist(),
                "churn_score": Const(None),
                "lifecycle_stage": stage.tolist(),
                "rfm_segment": Const(""),
                "shared_customer_id": Const(None),
                "orders_count": counts,
                "total_spent": Money(spent_cents),
                "last_order_at": Timestamps(last_order_at, ~has_orders),
                "redacted_at": Const(None),
                "created_at": Timestamps(joined_at),
                "updated_at": Timestamps(np.full(n, now_us)),
            },
            n,
        )
        bulk_write(
            Order,
            {
                "id": order_ids.tolist(),
                "merchant_id": merchant_id,
                "customer_id": customer_id_array[owner].tolist(),
                "shopify_order_id": shopify_order_id,
                "name": np.strings.add("#", (1001 + number).astype(str)),
                "total_price": Money(cents),
                "currency": Const(spec.currency),
                "financial_status": np.where(refunded, "refunded", "paid").tolist(),
                "processed_at": Timestamps(order_time),
                "cancelled_at": Const(None),
                "refunded_amount": Money(refunded_cents),
                "shopify_updated_at": Timestamps(np.where(refunded, reverse_at, order_time)),
                "created_at": Timestamps(earn_at),
                "updated_at": Timestamps(np.where(refunded, reverse_at, earn_at)),
            },
            total_orders,
        )
        entries = len(entry_ids)
        bulk_write(
            PointsTransaction,
            {
                "id": entry_ids[order_of_entries].tolist(),
                "merchant_id": merchant_id,
                "customer_id": customer_id_array[entry_customer].tolist(),
                "kind": entry_kind[order_of_entries].tolist(),
                "points": entry_points,
                "balance_after": balance_after,
                "idempotency_key": entry_key[order_of_entries].tolist(),
                "order_id": entry_order[order_of_entries].tolist(),
                "reward_id": entry_reward[order_of_entries].tolist(),
                "reverses_id": entry_reverses[order_of_entries].tolist(),
                "reversed_amount": entry_reversed_amount[order_of_entries],
                "actor_id": Const(None),
                "reason": Const(""),
                "metadata": Const({}),
                "created_at": Timestamps(entry_time[order_of_entries]),
            },
            entries,
        )
        return StoreData(n, total_orders, entries, int(balance.sum()), int(spent_cents.sum()))

    def _name_pools(self, seed: int) -> tuple[dict, dict]:
        """Small per-locale pools of first and last names (Faker, seeded)."""
        first, last = {}, {}
        for locale, faker_locale in FAKER_LOCALES.items():
            faker = Faker(faker_locale)
            faker.seed_instance(seed)
            first[locale] = [faker.first_name() for _ in range(NAMES_PER_LOCALE)]
            last[locale] = [faker.last_name() for _ in range(NAMES_PER_LOCALE)]
        return first, last
