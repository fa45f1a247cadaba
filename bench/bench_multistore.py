"""Full multi-store sync of a group of 3 stores × N shared customers against the fake Shopify.

Each repetition runs in a child process on a throwaway PostgreSQL database: 3 Plus stores, N
customers each with the same emails, linked into shared customers (timed), then every store's
metafield copies written from nothing (`metafieldsSet`, 25 metafields a call, `compareDigest`).
Reports GraphQL calls, metafields per call, wall time of link and sync, and the child's peak RSS.
"""

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "loyalnest_bench_multistore"


def add_arguments(parser):
    group = parser.add_argument_group("multistore")
    group.add_argument("--shared-customers", type=int, default=2_000)
    group.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name); the bench creates loyalnest_bench_multistore on it",
    )
    group.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))


def _child(customers: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.core.models import Customer, Merchant, ProgramSettings, StaffMember
    from apps.core.tenancy import merchant_scope, scopes_disabled
    from apps.multistore.services import group_invite_accept, group_invite_create, shared_customers_link
    from apps.shopify import http as shopify_http
    from apps.shopify.metafields import customer_metafields_sync
    from tests.fakes.shopify import FakeShopify
    from tests.fakes.shopify_operations import register_all
    from tests.shopify_helpers import shopify_connect

    settings.MULTISTORE_LINK_ON_JOIN = False
    settings.MULTISTORE_SYNC_ON_CHANGE = False
    fake = FakeShopify(client_id=settings.SHOPIFY_API_KEY, client_secret=settings.SHOPIFY_API_SECRET)
    register_all(fake)
    fake.bucket_max = 10**9  # measure our side, not Shopify's leaky bucket
    figures = {}
    with fake, scopes_disabled():
        settings.SHOPIFY_API_BASE_URL = fake.url
        shopify_http._client.cache_clear()
        stores = []
        for index, region in enumerate(("us", "eu", "jp")):
            store = Merchant.objects.create(
                shop_domain=f"bench-{region}.myshopify.com", name=f"Bench {region}", shopify_plan="shopify_plus"
            )
            ProgramSettings.objects.create(merchant=store)
            owner = StaffMember.objects.create(
                merchant=store, shopify_user_id=str(1000 + index), role="owner", email="owner@bench.example"
            )
            shopify_connect(fake, store)
            Customer.objects.bulk_create(
                [
                    Customer(
                        merchant=store,
                        shopify_customer_id=str(10_000_000 + n),
                        email=f"shopper{n}@bench.example",
                        first_name="Shopper",
                        last_name=str(n),
                        points_balance=n % 500,
                        lifetime_points=n % 500,
                    )
                    for n in range(customers)
                ],
                batch_size=2000,
            )
            stores.append((store, owner))
        (primary, primary_owner) = stores[0]
        for store, owner in stores[1:]:
            token = group_invite_create(merchant=primary, actor=primary_owner, shop_domain=store.shop_domain).token
            group = group_invite_accept(merchant=store, actor=owner, token=token)
        started = time.perf_counter()
        report = shared_customers_link(group=group)
        figures["link seconds"] = round(time.perf_counter() - started, 2)
        figures["shared customers linked"] = report.accounts_created
        calls = written = 0
        started = time.perf_counter()
        for store, _owner in stores:
            ids = list(Customer.objects.filter(merchant=store).order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(ids), 500):
                with merchant_scope(store):
                    result = customer_metafields_sync(merchant=store, customers=ids[start : start + 500])
                calls += result.calls
                written += result.written
        figures["sync seconds"] = round(time.perf_counter() - started, 2)
        figures["graphql calls"] = calls
        figures["metafields written"] = written
        figures["metafields per call"] = round(written / calls, 1) if calls else 0
        figures["peak rss MiB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def run(args) -> dict:
    figures: dict = {"stores": 3, "shared customers": args.shared_customers}
    with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
        for _ in range(args.repeat):
            admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
            try:
                env = {
                    **os.environ,
                    "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test",
                    "TEST_DATABASE_URL": f"{args.server_url}/{DATABASE}",
                    "TEST_REDIS_URL": args.redis_url,
                }
                done = subprocess.run(
                    [sys.executable, __file__, "--child", str(args.shared_customers)],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    raise SystemExit(f"bench child failed:\n{done.stdout}\n{done.stderr}")
                for key, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                    figures.setdefault(key, []).append(value)
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    return figures


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--child":
    print(json.dumps(_child(int(sys.argv[2]))))
