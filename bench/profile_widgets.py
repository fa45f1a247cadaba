"""Profile `GET /proxy/v1/api/widgets` in-process (cProfile), the way `bench_widgets.py` sets it up.

    python bench/profile_widgets.py [--customers 5000] [--requests 500] [--top 30]

Builds the bench's shop (VIP tiers, rewards, `--customers` shoppers) in the throwaway database
`loyalnest_bench_widgets_profile` and Redis db 7 (both wiped first), warms the content cache with
one request, then sends `--requests` signed requests for distinct shoppers (every one uncached)
through Django's test client: prints the mean cost per request, the SQL queries and Redis
commands per request, and the top of the profile by cumulative time.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "loyalnest_bench_widgets_profile"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_PROFILE_REDIS_URL", "redis://127.0.0.1:6379/7"))
    parser.add_argument("--keep", action="store_true", help="reuse the database when it exists")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    import bench_widgets as bench
    import psycopg
    import redis

    bench.DATABASE = DATABASE
    args.web_workers = 1
    env = bench._env(args)
    fresh = True
    with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if exists and args.keep:
            fresh = False
        else:
            admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
    if fresh:
        bench._manage(args, "migrate", "--verbosity=0")
        bench._manage(args, "shell", "-c", bench.SETUP.format(shop=bench.SHOP, customers=args.customers))
    redis.Redis.from_url(args.redis_url).flushdb()
    os.environ.update(env)
    os.environ["ALLOWED_HOSTS"] = "*"
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.core.redis import get_redis

    client = Client()
    assert client.get(bench._signed_path(1_000_000)).status_code == 200
    count = min(args.requests, (args.customers - 1) // 2)
    timed = [bench._signed_path(1_000_001 + n) for n in range(count)]
    paths = [bench._signed_path(1_000_001 + count + n) for n in range(count)]
    started = time.perf_counter()
    for path in timed:
        assert client.get(path).status_code == 200
    plain = (time.perf_counter() - started) / count
    redis_commands = 0
    original = get_redis().__class__.execute_command

    def counting(self, *a, **k):
        nonlocal redis_commands
        redis_commands += 1
        return original(self, *a, **k)

    get_redis().__class__.execute_command = counting
    original_pipeline = redis.client.Pipeline.execute

    def counting_pipeline(self, *a, **k):
        nonlocal redis_commands
        redis_commands += 1
        return original_pipeline(self, *a, **k)

    redis.client.Pipeline.execute = counting_pipeline
    profile = cProfile.Profile()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        profile.enable()
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, response.content
        profile.disable()
        elapsed = time.perf_counter() - started
    n = len(paths)
    print(f"{n} uncached shoppers: {1000 * plain:.2f} ms a request ({1000 * elapsed / n:.2f} ms with the profiler), "
          f"{len(queries) / n:.1f} SQL queries and {redis_commands / n:.1f} Redis round trips a request, "
          f"answer {len(response.content)} bytes")  # fmt: skip
    seen = {}
    for query in queries.captured_queries[: len(queries) // n]:
        seen[query["sql"][:140]] = seen.get(query["sql"][:140], 0) + 1
    for sql, count in seen.items():
        print(f"  {count} × {sql}")
    pstats.Stats(profile).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
