"""`GET /v1/api/merchant-referrals/analytics` for an advocate with 1,000,000 clicks (a year of
traffic, ~1,000 conversions), next to 200,000 clicks of another advocate. Target: < 100 ms.

The database `loyalnest_bench_mref` is created, migrated and seeded with SQL (clicks, then the
daily rollup the click service maintains, built from them); Redis db 1 takes the audit stream
appends. Each repetition times `--requests` whole API requests (session-token auth, scope
check, validation, the rollup read, the audit row, the stream append) through Django's test
client in this process, for a 365-day and a 30-day range, and reports their medians and p95; the
same totals counted straight from the clicks table are timed for comparison. The database is
dropped at the end.
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "loyalnest_bench_mref"
SHOP = "bench-advocate.myshopify.com"


def add_arguments(parser):
    group = parser.add_argument_group("merchant_referrals")
    group.add_argument("--clicks", type=int, default=1_000_000)
    group.add_argument("--requests", type=int, default=50, help="timed API requests per range and repetition")
    group.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name); the bench creates loyalnest_bench_mref on it",
    )


def _migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "redis://127.0.0.1:6379/1"}
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity=0", "--skip-checks"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"migrate failed:\n{done.stdout}\n{done.stderr}")


SEED_CLICKS = """
INSERT INTO merchant_referral_clicks (merchant_id, link_id, visitor_hash, clicked_date, clicked_at)
SELECT %(merchant)s, %(link)s, md5(%(merchant)s || i::text),
       (now() - make_interval(secs => (i * 31536000.0 / %(clicks)s)))::date,
       now() - make_interval(secs => (i * 31536000.0 / %(clicks)s))
FROM generate_series(1, %(clicks)s) AS i
"""
SEED_DAILY = """
INSERT INTO merchant_referral_daily (merchant_id, day, clicks, conversions)
SELECT merchant_id, clicked_date, count(*), count(*) / 1000
FROM merchant_referral_clicks WHERE merchant_id = %(merchant)s GROUP BY merchant_id, clicked_date
"""
DIRECT = """
SELECT count(*) FROM merchant_referral_clicks
WHERE merchant_id = %s AND clicked_date BETWEEN %s AND %s
"""


def _seed(clicks: int) -> dict:
    from django.db import connection

    from apps.core.models import Merchant, StaffMember
    from apps.merchant_referrals.models import MerchantReferralLink
    from apps.shopify.models import ShopifyInstallation

    ids = {}
    for domain, count in ((SHOP, clicks), ("bench-neighbour.myshopify.com", clicks // 5)):
        merchant = Merchant.objects.create(shop_domain=domain, name=domain.split(".")[0])
        # Placeholder tokens: the bench never calls Shopify.
        ShopifyInstallation.objects.create(merchant=merchant, access_token="placeholder", refresh_token="placeholder")  # noqa: S106
        StaffMember.objects.create(merchant=merchant, shopify_user_id="1", role="owner")
        link = MerchantReferralLink.objects.create(merchant=merchant, code=f"MERBENCH{len(ids):04d}")
        with connection.cursor() as cursor:
            cursor.execute(SEED_CLICKS, {"merchant": merchant.pk, "link": link.pk, "clicks": count})
            cursor.execute(SEED_DAILY, {"merchant": merchant.pk})
        ids[domain] = merchant.pk
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE merchant_referral_clicks")
        cursor.execute("ANALYZE merchant_referral_daily")
    return ids


def _timed(call, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _p95(samples: list[float]) -> float:
    return sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]


def run(args) -> dict:
    url = f"{args.server_url}/{DATABASE}"
    figures: dict = {"clicks": args.clicks, "command": "python bench/run.py merchant_referrals --repeat=3"}
    with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
        try:
            _migrate(url)
            os.environ.update(
                {
                    "DATABASE_URL": url,
                    "REDIS_URL": "redis://127.0.0.1:6379/1",
                    "DJANGO_SETTINGS_MODULE": "loyalnest.settings.base",
                    "SHOPIFY_API_KEY": "bench-client-id",
                    "SHOPIFY_API_SECRET": "bench-client-secret-0123456789abcdef0123456789",
                    "ALLOWED_HOSTS": "testserver",
                }
            )
            sys.path.insert(0, str(ROOT))
            import django

            django.setup()
            from django.db import connection
            from django.test import Client
            from django.utils import timezone
            from django_scopes import scopes_disabled

            sys.path.insert(0, str(ROOT / "tests"))
            from tests.shopify_helpers import session_token

            started = time.perf_counter()
            with scopes_disabled():
                ids = _seed(args.clicks)
            figures["seed seconds"] = round(time.perf_counter() - started, 1)
            client = Client()
            today = timezone.now().date()
            for label, days in (("365 days", 364), ("30 days", 29)):
                start = today - timezone.timedelta(days=days)
                query = {"date_range[start]": start.isoformat(), "date_range[end]": today.isoformat()}

                def call(query=query):
                    headers = {"HTTP_AUTHORIZATION": f"Bearer {session_token(SHOP, user_id='1')}"}
                    response = client.get("/v1/api/merchant-referrals/analytics", query, **headers)
                    assert response.status_code == 200, response.content

                call()  # warm-up
                body = client.get(
                    "/v1/api/merchant-referrals/analytics",
                    query,
                    HTTP_AUTHORIZATION=f"Bearer {session_token(SHOP, user_id='1')}",
                ).json()
                figures[f"analytics {label}: clicks counted"] = body["analytics"]["clicks"]
                for _ in range(args.repeat):
                    samples = _timed(call, args.requests)
                    figures.setdefault(f"API {label} median (ms)", []).append(round(statistics.median(samples), 2))
                    figures.setdefault(f"API {label} p95 (ms)", []).append(round(_p95(samples), 2))

                    def direct(start=start):
                        with connection.cursor() as cursor:
                            cursor.execute(DIRECT, [ids[SHOP], start, today])
                            cursor.fetchone()

                    direct_samples = _timed(direct, 5)
                    figures.setdefault(f"count over clicks {label} median (ms)", []).append(
                        round(statistics.median(direct_samples), 2)
                    )
            connection.close()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    return figures
