"""The storefront widgets' data endpoint through the app proxy, on loopback, in a throwaway database.

`GET /proxy/v1/api/widgets` as Shopify's app proxy forwards it (signed query, logged-in shopper),
for random shoppers among 100,000 customers of one shop with VIP tiers and rewards: signature
check, shop and customer lookup, the per-shop and per-shopper rate limits (limits set high so
nothing is refused, but they are counted in Redis), widget content from the Redis stream
`content:{merchant_id}:{locale}` and the shopper's tier progress and next reward.
gunicorn sync workers, wrk at 32 connections → requests/s, p50 and p99.

Uses ports 8730 (and 8731 for `--baseline`), the database `loyalnest_bench_widgets` and Redis db 6, all wiped first.
"""

import hashlib
import hmac
import os
import random
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "loyalnest_bench_widgets"
SECRET = "bench-widgets-secret"  # noqa: S105  (a throwaway secret for the loopback benchmark)
SHOP = "bench-widgets.myshopify.com"
PORT = 8730


def add_arguments(parser):
    group = parser.add_argument_group("widgets")
    group.add_argument("--customers", type=int, default=100_000)
    group.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections")
    group.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    group.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    group.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    group.add_argument(
        "--worker-tmp-dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else "",  # noqa: S108  (gunicorn's private mkstemp file)
        help="gunicorn's heartbeat directory, as deploy/gunicorn.conf.py sets it ('' for the system's temporary directory)",
    )
    group.add_argument("--keep", action="store_true", help="reuse the benchmark database when it exists")
    group.add_argument(
        "--baseline",
        action="store_true",
        help="also measure a bare DRF view reading one customer row, alternating with the endpoint",
    )
    group.add_argument(
        "--gamified",
        action="store_true",
        help="the shop also has badges (two earned by every third shopper) and streaks (every second shopper)",
    )
    group.add_argument("--seconds", type=float, default=10.0, help="how long wrk sends per repetition")
    group.add_argument("--distinct-shoppers", type=int, default=5000, help="signed URLs per repetition")
    group.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )
    group.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))


def _env(args) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.base",
        "DATABASE_URL": f"{args.server_url}/{DATABASE}",
        "DB_CONN_MAX_AGE": "600",
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "SHOPIFY_API_KEY": "bench-client-id",
        "SHOPIFY_API_SECRET": SECRET,
        "PROXY_RATE_LIMIT_SHOP": "100000000/60",
        "PROXY_RATE_LIMIT_WIDGETS": "100000000/60",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
    }


def _manage(args, *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=_env(args), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


SETUP = """
from apps.core.models import Customer, Merchant, ProgramSettings, Reward, VipTier
from apps.core.tenancy import scopes_disabled
with scopes_disabled():
    m = Merchant.objects.create(shop_domain={shop!r}, name="Bench", is_installed=True)
    ProgramSettings.objects.get_or_create(merchant=m)
    for i, (name, points) in enumerate([("Silver", 0), ("Gold", 1000), ("Platinum", 5000)]):
        VipTier.objects.create(merchant=m, name={{"en": name}}, min_lifetime_points=points)
    for cost in (100, 300, 500, 1000, 2500):
        Reward.objects.create(merchant=m, name={{"en": f"{{cost}} points reward"}}, kind="fixed_discount", points_cost=cost)
    batch = []
    for n in range({customers}):
        batch.append(Customer(merchant=m, shopify_customer_id=str(1_000_000 + n), points_balance=n % 3000,
                              lifetime_points=n % 7000))
        if len(batch) == 5000:
            Customer.objects.bulk_create(batch)
            batch = []
    Customer.objects.bulk_create(batch)
"""

GAMIFIED_SETUP = """
from datetime import date
from apps.core.models import Customer, Merchant
from apps.core.tenancy import scopes_disabled
from apps.gamification.models import Achievement, Badge, Streak
with scopes_disabled():
    m = Merchant.objects.get(shop_domain={shop!r})
    badges = [Badge.objects.create(merchant=m, name={{"en": f"Badge {{n}}"}}, icon="star",
                                   rule={{"type": "order_count", "count": n + 1}}) for n in range(3)]
    ids = list(Customer.objects.filter(merchant=m).order_by("shopify_customer_id").values_list("pk", flat=True))
    Achievement.objects.bulk_create(
        [Achievement(merchant=m, customer_id=pk, badge_definition=badge, badge=badge.name)
         for pk in ids[::3] for badge in badges[:2]], batch_size=5000)
    Streak.objects.bulk_create(
        [Streak(merchant=m, customer_id=pk, current_count=2, longest_count=3, last_period_date=date.today().replace(day=1))
         for pk in ids[::2]], batch_size=5000)
"""


def _signed_path(customer_id: int) -> str:
    params = {
        "locale": "en",
        "shop": SHOP,
        "logged_in_customer_id": str(customer_id),
        "path_prefix": "/apps/loyalnest",
        "timestamp": str(int(time.time())),
    }
    message = "".join(f"{key}={value}" for key, value in sorted(params.items()))
    signature = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    return "/proxy/v1/api/widgets?" + urlencode({**params, "signature": signature})


WRK_SCRIPT = """
local paths = {%s}
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("GET", paths[counter %% #paths + 1])
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(args, paths: list[str], port: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ",\n".join(f'"{path}"' for path in paths))
    try:
        output = subprocess.run(
            ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds:g}s", "--latency", "-s", script.name,
             f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    requests, duration_us, status_errors, socket_errors, p50_us, p99_us = (int(v) for v in line.split()[1:])
    return {
        "requests/s": round(requests / (duration_us / 1e6)),
        "p50 ms": round(p50_us / 1000, 1),
        "p99 ms": round(p99_us / 1000, 1),
        "non-2xx answers": status_errors,
        "socket errors": socket_errors,
    }


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _ok(path: str, port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _database_ready(args) -> bool:
    """With --keep: the benchmark database exists with its shop and customers (else made anew)."""
    with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if exists and args.keep:
            with psycopg.connect(f"{args.server_url}/{DATABASE}") as bench:
                try:
                    count = bench.execute("SELECT count(*) FROM users").fetchone()[0]
                except psycopg.Error:
                    count = 0
            if count == args.customers:
                return True
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    return False


def _serve(args, application: str, check_path: str, port: int):
    command = [sys.executable, "-m", "gunicorn", application, "-b", f"127.0.0.1:{port}", "-w", str(args.web_workers),
               "-k", args.worker_class, "--threads", str(args.threads), "--keep-alive", "30",
               "--log-level", "warning"]  # fmt: skip
    if args.worker_tmp_dir:
        command += ["--worker-tmp-dir", args.worker_tmp_dir]
    server = subprocess.Popen(command, cwd=ROOT, env=_env(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not _wait(lambda: _ok(check_path, port), 60):
        server.terminate()
        raise SystemExit(f"gunicorn ({application}) did not answer {check_path.split('?')[0]} with 200")
    return server


def _cpu_seconds(port: int) -> dict[str, float]:
    """CPU time (user + system) used so far by each process group that serves a request: the
    gunicorn listening on `port` (its workers are forks and keep its command line), PostgreSQL
    and Redis.

    The machine's speed varies from one minute to the next (the same code's requests/s moved by
    a fourth within one run), so each repetition also says what a request cost each process:
    that, and the bare view measured in the same minutes, is what to compare across runs.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    groups = (
        ("web", "-m gunicorn", f"127.0.0.1:{port}"),
        ("postgresql", "postgres", ""),
        ("redis", "redis-server", ""),
    )
    used: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = b" ".join(command).decode(errors="replace")
        group = next(
            (
                label
                for label, needle, also in groups
                if (name.startswith(needle) or f" {needle}" in name[:120]) and also in name
            ),
            None,
        )
        if group:
            used[group] = used.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


CPU_GROUPS = ("web", "postgresql", "redis")


def _measure_once(args, figures: dict, server: "_Server", shoppers: list[int]) -> None:
    paths = [server.path_for(c) for c in shoppers]  # fresh timestamps (90 s window)
    for path in paths[:50]:
        _ok(path, server.port)  # warm every worker's connections and the content cache
    before = _cpu_seconds(server.port)
    results = _wrk(args, paths, server.port)
    after = _cpu_seconds(server.port)
    requests = results["requests/s"] * args.seconds
    for group in CPU_GROUPS:
        spent = after.get(group, 0.0) - before.get(group, 0.0)
        results[f"{group} CPU ms/request"] = round(1000 * spent / requests, 3) if requests else None
    for metric, value in results.items():
        figures.setdefault(f"{server.prefix}{metric}", []).append(value)


class _Server(typing.NamedTuple):
    prefix: str  # of its figures' names
    application: str
    path_for: typing.Callable[[int], str]
    port: int


def _measure(args, figures: dict, servers: list[_Server]) -> None:
    """Every server runs the whole time; each repetition measures them one after the other, so
    the bare view and the endpoint are compared over the same minutes."""
    running = []
    try:
        for server in servers:
            running.append(_serve(args, server.application, server.path_for(1_000_000), server.port))
        rng = random.Random(6)
        for _ in range(args.repeat):
            shoppers = [1_000_000 + rng.randrange(args.customers) for _ in range(args.distinct_shoppers)]
            for server in servers:
                _measure_once(args, figures, server, shoppers)
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait(timeout=30)


def _bare_path(customer_id: int) -> str:
    return "/bench/bare?" + urlencode({"shop": SHOP, "logged_in_customer_id": str(customer_id)})


def run(args) -> dict:
    global DATABASE
    if args.gamified:
        DATABASE = "loyalnest_bench_widgets_gamified"
    workers = f"{args.web_workers} {args.worker_class} workers" + (
        f" × {args.threads} threads" if args.threads > 1 else ""
    )
    figures: dict = {
        "command": "python bench/run.py widgets --repeat=3",
        "setup": f"{args.customers:,} customers, gunicorn {workers}, wrk {args.connections} "
        f"connections for {args.seconds:g} s, DB_CONN_MAX_AGE=600, heartbeat in {args.worker_tmp_dir or 'the temporary directory'}, "
        "signature + rate limits + Redis content cache" + (", badges and streaks" if args.gamified else ""),
    }
    keep = _database_ready(args)
    try:
        if not keep:
            _manage(args, "migrate", "--verbosity=0")
            _manage(args, "shell", "-c", SETUP.format(shop=SHOP, customers=args.customers))
            if args.gamified:
                _manage(args, "shell", "-c", GAMIFIED_SETUP.format(shop=SHOP))
        redis.Redis.from_url(args.redis_url).flushdb()
        servers = [_Server("", "loyalnest.wsgi", _signed_path, PORT)]
        if args.baseline:
            servers.insert(0, _Server("bare DRF view: ", "bench.baseline.wsgi", _bare_path, PORT + 1))
        _measure(args, figures, servers)
    finally:
        if not args.keep:
            with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    return figures
