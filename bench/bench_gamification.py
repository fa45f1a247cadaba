"""Gamification under load, in-process, on PostgreSQL (database `loyalnest_bench_gamification`,
Redis db 2, both wiped first; the database is dropped at the end unless `--keep-database`).

1. Processing: 10,000 stored `orders/paid` deliveries (2,000 shoppers, orders spread over the
   last 14 months so streaks grow and a seasonal window is hit; every shopper in one of 10
   teams of the current cycle; six badges: first purchase, 3 orders, 300 spent, 3-month
   streak, a seasonal window across the new year, 2 referrals) drained by
   `webhook_inbox_drain` (batches of 200, as the shop's Celery drain does) with the
   gamification receivers connected → orders/s. The same load on a second shop with the
   receivers disconnected gives the baseline, so the cost of gamification is visible.
   Checked afterwards: team scores = the points the members earned this cycle, every badge
   awarded at most once.
2. Ranking reads: a cycle with `--members` customers (default 100,000) in `--teams` teams
   (default 1,000), the sorted set built; then `selectors.team_ranking` (top 10 with names)
   and `selectors.team_rank_for_customer` (a random member's team rank) → p50/p99 ms at the
   service level. Also the rebuild of the sorted set from PostgreSQL after Redis lost it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
NAME = "loyalnest_bench_gamification"
REDIS_URL = "redis://127.0.0.1:6379/2"

CHILD = r"""
import json, random, statistics, sys, time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import django
django.setup()
from django.db import transaction
from apps.core.models import Customer, Merchant, ProgramSettings, ReferralLink, PointsTransaction
from apps.core.redis import get_redis
from apps.core.signals import ledger_entries_written, orders_synced
from apps.core.tenancy import merchant_scope, scopes_disabled
from apps.gamification import selectors
from apps.gamification.awarding import on_ledger_entries_written, on_orders_synced
from apps.gamification.leaderboard import leaderboard_rebuild
from apps.gamification.models import (Achievement, Badge, GamificationSettings, Streak, Team, TeamLeaderboard,
                                      TeamMembership)
from apps.shopify.models import WebhookDelivery
from apps.shopify.webhooks.inbox import webhook_inbox_drain

args = json.loads(sys.argv[1])
rng = random.Random(args["seed"])
figures = {}
NOW = datetime.now(UTC)


def shop(domain, zone="Europe/Berlin"):
    merchant = Merchant.objects.create(shop_domain=domain, name=domain.split(".")[0], timezone=zone)
    ProgramSettings.objects.create(merchant=merchant)
    return merchant


def load_orders(merchant, *, orders, shoppers, gamified):
    with merchant_scope(merchant):
        customers = [Customer(merchant=merchant, shopify_customer_id=str(100000 + i), locale=rng.choice(["en", "de", "ar", "ja"]))
                     for i in range(shoppers)]
        Customer.objects.bulk_create(customers, batch_size=2000)
        if gamified:
            GamificationSettings.objects.create(merchant=merchant, streak_period="month")
            for name, rule in [
                ("First purchase", {"type": "first_purchase"}),
                ("Regular", {"type": "order_count", "count": 3}),
                ("Big spender", {"type": "total_spend", "amount": "300.00"}),
                ("Three months in a row", {"type": "streak", "length": 3}),
                ("Seasonal Star", {"type": "seasonal", "start": "12-01", "end": "01-15"}),
                ("Ambassador", {"type": "referrals", "count": 2}),
            ]:
                Badge.objects.create(merchant=merchant, name={"en": name, "de": name + " (de)"}, rule=rule)
            cycle = selectors.current_cycle(merchant=merchant)
            teams = [Team.objects.create(merchant=merchant, cycle=cycle, name={"en": f"Team {i}"}) for i in range(10)]
            TeamMembership.objects.bulk_create(
                [TeamMembership(merchant=merchant, customer=c, team=teams[i % 10], cycle=cycle) for i, c in enumerate(customers)],
                batch_size=2000,
            )
            ReferralLink.objects.bulk_create(
                [ReferralLink(merchant=merchant, customer=c, code=f"B{merchant.pk[-6:]}{i}", clicks=3, conversions=2)
                 for i, c in enumerate(customers[: shoppers // 10])]
            )
        deliveries = []
        for number in range(orders):
            order_id = 5_000_000 + number
            customer = rng.randrange(shoppers)
            # The last ~14 months; the newest orders are "now", so team scores land in this cycle.
            placed = NOW - timedelta(days=rng.uniform(0, 420)) if number < orders * 0.7 else NOW - timedelta(minutes=rng.uniform(0, 60))
            body = {
                "id": order_id, "name": f"#{number}", "email": "bench@example.com",
                "created_at": placed.isoformat(), "processed_at": placed.isoformat(),
                "updated_at": (placed + timedelta(minutes=1)).isoformat(), "cancelled_at": None,
                "financial_status": "paid", "currency": "USD", "total_price": f"{rng.uniform(10, 200):.2f}",
                "customer": {"id": 100000 + customer}, "refunds": [],
            }
            deliveries.append(WebhookDelivery(merchant=merchant, webhook_id=f"w{order_id}", topic="orders/paid", body=body))
        WebhookDelivery.objects.bulk_create(deliveries, batch_size=2000)


def drain(merchant):
    started = time.perf_counter()
    with merchant_scope(merchant):
        while webhook_inbox_drain(merchant=merchant, limit=200).claimed:
            pass
    return time.perf_counter() - started


get_redis().flushdb()
orders, shoppers = args["orders"], args["shoppers"]

# --- 1. processing, with and without the receivers --------------------------------------------
gamified = shop("bench-gamified.myshopify.com")
plain = shop("bench-plain.myshopify.com")
load_orders(gamified, orders=orders, shoppers=shoppers, gamified=True)
load_orders(plain, orders=orders, shoppers=shoppers, gamified=False)
with scopes_disabled():
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

elapsed = drain(gamified)
figures["orders/s with gamification"] = orders / elapsed
orders_synced.disconnect(dispatch_uid="gamification.orders_synced")
ledger_entries_written.disconnect(dispatch_uid="gamification.ledger_entries_written")
elapsed_plain = drain(plain)
figures["orders/s without gamification (baseline)"] = orders / elapsed_plain
orders_synced.connect(on_orders_synced, dispatch_uid="gamification.orders_synced")
ledger_entries_written.connect(on_ledger_entries_written, dispatch_uid="gamification.ledger_entries_written")

with merchant_scope(gamified):
    processed = WebhookDelivery.objects.filter(merchant=gamified, status="processed").count()
    cycle = selectors.current_cycle(merchant=gamified)
    start = datetime.fromisoformat(cycle + "-01T00:00:00").replace(tzinfo=__import__("zoneinfo").ZoneInfo(gamified.timezone))
    earned = sum(PointsTransaction.objects.filter(merchant=gamified, kind="earn", created_at__gte=start)
                 .values_list("points", flat=True))
    scores = sum(TeamLeaderboard.objects.filter(merchant=gamified, cycle=cycle).values_list("score", flat=True))
    figures["check"] = {
        "deliveries processed": processed,
        "achievements": Achievement.objects.filter(merchant=gamified).count(),
        "customers with a streak": Streak.objects.filter(merchant=gamified).count(),
        "longest streak": max(Streak.objects.filter(merchant=gamified).values_list("longest_count", flat=True), default=0),
        "team scores equal points earned this cycle": scores == earned,
        "achievements per (customer, badge) at most 1": Achievement.objects.filter(merchant=gamified).count()
            == Achievement.objects.filter(merchant=gamified).values("customer_id", "badge_definition_id").distinct().count(),
    }

# --- 2. ranking reads on a 100,000-member leaderboard -----------------------------------------
members, team_count = args["members"], args["teams"]
league = shop("bench-league.myshopify.com")
with merchant_scope(league):
    cycle = selectors.current_cycle(merchant=league)
    teams = [Team(merchant=league, cycle=cycle, name={"en": f"Team {i}", "ar": f"الفريق {i}"}) for i in range(team_count)]
    Team.objects.bulk_create(teams, batch_size=5000)
    customers = [Customer(merchant=league, shopify_customer_id=str(i)) for i in range(members)]
    Customer.objects.bulk_create(customers, batch_size=5000)
    TeamMembership.objects.bulk_create(
        [TeamMembership(merchant=league, customer=c, team=teams[i % team_count], cycle=cycle) for i, c in enumerate(customers)],
        batch_size=5000,
    )
    TeamLeaderboard.objects.bulk_create(
        [TeamLeaderboard(merchant=league, team_id=t.pk, cycle=cycle, score=rng.randrange(0, 1_000_000)) for t in teams],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    started = time.perf_counter()
    leaderboard_rebuild(merchant_id=league.pk, cycle=cycle)
    figures["sorted set rebuild from PostgreSQL (ms)"] = (time.perf_counter() - started) * 1000
    for _ in range(50):  # warm the connection and caches
        selectors.team_ranking(merchant=league, cycle=cycle, limit=10, locale="ar")
    top, mine = [], []
    sample = [customers[rng.randrange(members)] for _ in range(args["reads"])]
    for customer in sample:
        started = time.perf_counter()
        selectors.team_ranking(merchant=league, cycle=cycle, limit=10, locale="ar")
        top.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        selectors.team_rank_for_customer(merchant=league, customer=customer, cycle=cycle, locale="ar")
        mine.append((time.perf_counter() - started) * 1000)

def p(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

figures["top 10 read p50 (ms)"] = p(top, 0.50)
figures["top 10 read p99 (ms)"] = p(top, 0.99)
figures["my team's rank read p50 (ms)"] = p(mine, 0.50)
figures["my team's rank read p99 (ms)"] = p(mine, 0.99)
get_redis().flushdb()
print("FIGURES " + json.dumps(figures))
"""


def add_arguments(parser):
    group = parser.add_argument_group("gamification")
    group.add_argument("--gamification-orders", type=int, default=10_000)
    group.add_argument("--gamification-shoppers", type=int, default=2_000)
    group.add_argument("--gamification-members", type=int, default=100_000)
    group.add_argument("--gamification-teams", type=int, default=1_000)
    group.add_argument("--gamification-reads", type=int, default=2_000)
    group.add_argument("--gamification-keep-database", action="store_true", help="Keep the database after the run.")
    group.add_argument(
        "--gamification-server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )


def _env(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.base",
        "DEBUG": "false",
        "POSTHOG_API_KEY": "",
    }


def _run(database_url: str, *command: str) -> str:
    done = subprocess.run(command, cwd=ROOT, env=_env(database_url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def run(args) -> dict:
    database_url = f"{args.gamification_server_url}/{NAME}"
    figures: dict = {}
    child_args = {
        "orders": args.gamification_orders,
        "shoppers": args.gamification_shoppers,
        "members": args.gamification_members,
        "teams": args.gamification_teams,
        "reads": args.gamification_reads,
    }
    with psycopg.connect(f"{args.gamification_server_url}/postgres", autocommit=True) as admin:
        try:
            for repetition in range(args.repeat):
                admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{NAME}"')
                _run(database_url, sys.executable, "manage.py", "migrate", "--verbosity=0")
                output = _run(
                    database_url, sys.executable, "-c", CHILD, json.dumps({**child_args, "seed": repetition + 1})
                )
                sample = json.loads(output.split("FIGURES ", 1)[1])
                for key, value in sample.items():
                    if isinstance(value, float):
                        figures.setdefault(key, []).append(round(value, 3))
                    else:
                        figures[key] = value
        finally:
            if not args.gamification_keep_database:
                admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    return figures
