"""Full multi-store sync of a group of 3 stores × N shared customers against the fake Shopify.

Each repetition runs in a child process on a throwaway PostgreSQL database: 3 Plus stores, N
customers each with the same emails, linked into shared customers (timed), then every store's
metafield copies written from nothing through the bulk sync's own path (`group_copies_sync`, a
keyset page of 500 customers at a time, `metafieldsSet` with 25 metafields a call and
`compareDigest`), timed.

The fake Shopify serves from a forked process of its own: it counts the `metafieldsSet` calls
and the metafields of the largest one (what Shopify would see), and its store of 9 × N
metafields does not count towards the peak RSS reported, which is LoyalNest's process alone,
measured from after the seeding (Linux `VmHWM`, reset through `/proc/self/clear_refs`).
"""

import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "loyalnest_bench_multistore"
SEED_CHUNK = 5_000


def add_arguments(parser):
    group = parser.add_argument_group("multistore")
    group.add_argument("--shared-customers", type=int, default=2_000)
    group.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name); the bench creates loyalnest_bench_multistore on it",
    )
    group.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))


def _peak_rss_reset() -> bool:
    """Start a new peak-RSS window (Linux); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mib() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class _Tally(list):
    """The fake's call log, reduced to counts: 36,000 recorded calls would only measure the fake."""

    def __init__(self):
        super().__init__()
        self.stats = {"calls": 0, "metafieldsSet calls": 0, "metafields set": 0, "max metafields per call": 0}

    def append(self, item):
        _shop, name, variables = item
        self.stats["calls"] += 1
        if name == "CustomerMetafieldsSet":
            size = len(variables.get("metafields") or [])
            self.stats["metafieldsSet calls"] += 1
            self.stats["metafields set"] += size
            self.stats["max metafields per call"] = max(self.stats["max metafields per call"], size)


class _Discard(list):
    def append(self, item):
        pass


def _serve_fake(fake, control) -> None:
    """In the forked process: serve the fake Shopify until told to stop, then send its counts."""
    tally = fake.calls = _Tally()
    fake.server.requests = _Discard()
    with fake:
        control.recv()
        control.send(tally.stats)


def _child(customers: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.core.models import Customer, Merchant, ProgramSettings, StaffMember
    from apps.core.tenancy import scopes_disabled
    from apps.multistore.services import (
        group_copies_sync,
        group_invite_accept,
        group_invite_create,
        shared_customers_link,
    )
    from apps.shopify import http as shopify_http
    from tests.fakes.shopify import FakeShopify
    from tests.fakes.shopify_operations import register_all
    from tests.shopify_helpers import shopify_connect

    settings.MULTISTORE_LINK_ON_JOIN = False
    settings.MULTISTORE_SYNC_ON_CHANGE = False
    fake = FakeShopify(client_id=settings.SHOPIFY_API_KEY, client_secret=settings.SHOPIFY_API_SECRET)
    register_all(fake)
    # Lift the cost bucket (size and restore rate) to measure our side, not Shopify's leaky
    # bucket: at the fake's default 50 points/s a 100,000-customer sync mostly sleeps.
    fake.bucket_max = fake.restore_rate = 10**9
    figures = {}
    with scopes_disabled():
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
            for first in range(0, customers, SEED_CHUNK):
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
                        for n in range(first, min(first + SEED_CHUNK, customers))
                    ]
                )
            stores.append((store, owner))
        (primary, primary_owner) = stores[0]
        for store, owner in stores[1:]:
            token = group_invite_create(merchant=primary, actor=primary_owner, shop_domain=store.shop_domain).token
            group = group_invite_accept(merchant=store, actor=owner, token=token)

        # Fork the fake Shopify (its tokens are issued above) before any Shopify call.
        context = multiprocessing.get_context("fork")
        control, remote = context.Pipe()
        server = context.Process(target=_serve_fake, args=(fake, remote), daemon=True)
        server.start()
        try:
            figures["rss before link MiB"] = _peak_rss_mib() if _peak_rss_reset() else None
            started = time.perf_counter()
            report = shared_customers_link(group=group)
            figures["link seconds"] = round(time.perf_counter() - started, 2)
            figures["link peak rss MiB"] = _peak_rss_mib()
            figures["shared customers linked"] = report.accounts_created
            figures["link failures"] = report.failed
            _peak_rss_reset()
            started = time.perf_counter()
            for store, _owner in stores:
                synced, after = group_copies_sync(group_id=group.pk, merchant_id=store.pk)
                while synced:
                    synced, after = group_copies_sync(group_id=group.pk, merchant_id=store.pk, after=after)
            figures["sync seconds"] = round(time.perf_counter() - started, 2)
            figures["sync peak rss MiB"] = _peak_rss_mib()
        finally:
            control.send("stop")
            seen = control.recv() if control.poll(60) else {}
            server.join(10)
        figures["graphql calls"] = seen.get("calls")
        figures["metafieldsSet calls"] = seen.get("metafieldsSet calls")
        figures["metafields written"] = seen.get("metafields set")
        figures["metafields per call"] = (
            round(seen["metafields set"] / seen["metafieldsSet calls"], 1) if seen.get("metafieldsSet calls") else 0
        )
        figures["max metafields per call"] = seen.get("max metafields per call")
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
