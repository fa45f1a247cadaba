"""Webhook intake and processing on loopback, in a throwaway PostgreSQL database.

1. Intake: signed `orders/paid` deliveries posted by concurrent keep-alive clients to gunicorn
   (sync workers, persistent database connections: DB_CONN_MAX_AGE) → deliveries/s and
   p50/p99 latency. Nothing consumes the queue during this phase.
2. Processing: one Celery worker (`-P solo`, one process) drains those deliveries into the
   ledger (the shop's drain task, batches of SHOPIFY_WEBHOOK_BATCH_SIZE) → orders/s per worker,
   from the first to the last `processed_at`.
3. Burst: deliveries at a fixed rate (30/s for 2 minutes, `--burst-rate`/`--burst-seconds`) with
   the worker running; afterwards every delivery must be processed and every order credited
   exactly once (no loss).

Uses ports 8720-8729, the database `loyalnest_bench_webhooks` and Redis db 5, all wiped first.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "loyalnest_bench_webhooks"
SECRET = "bench-webhook-secret"  # noqa: S105  (a throwaway secret for the loopback benchmark)
SHOP = "bench-webhooks.myshopify.com"
PORT = 8720


def add_arguments(parser):
    group = parser.add_argument_group("webhooks")
    group.add_argument("--deliveries", type=int, default=3000, help="intake deliveries per repetition")
    group.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients")
    group.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers")
    group.add_argument(
        "--load-generator",
        choices=["wrk", "threads"],
        default="wrk" if shutil.which("wrk") else "threads",
        help="wrk (native, Debian package `wrk`; the default when installed) or Python client threads",
    )
    group.add_argument("--intake-seconds", type=float, default=8.0, help="how long wrk sends (wrk only)")
    group.add_argument("--burst-rate", type=float, default=30.0)
    group.add_argument("--burst-seconds", type=float, default=120.0)
    group.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )
    group.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))


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


SETUP = f"""
from apps.core.models import Merchant, ProgramSettings
m = Merchant.objects.create(shop_domain={SHOP!r}, name="Bench")
ProgramSettings.objects.create(merchant=m)
"""


def _body(order_id: int) -> bytes:
    return json.dumps(
        {
            "id": order_id,
            "name": f"#{order_id}",
            "total_price": "25.00",
            "currency": "USD",
            "financial_status": "paid",
            "created_at": "2026-11-02T10:00:00Z",
            "processed_at": "2026-11-02T10:00:00Z",
            "updated_at": "2026-11-02T10:00:00Z",
            "customer": {"id": 900000 + order_id % 1000, "email": f"c{order_id % 1000}@example.com"},
            "line_items": [{"id": order_id * 10 + i, "price": "5.00", "quantity": 1} for i in range(5)],
            "refunds": [],
        }
    ).encode()


def _headers(body: bytes) -> dict:
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-02T10:00:00Z",
        "X-Shopify-Api-Version": "2026-10",
    }


class _Clients(threading.local):
    client = None


def _post_all(args, url: str, bodies: list[bytes]) -> tuple[float, list[float], int]:
    local = _Clients()
    signed = [(body, _headers(body)) for body in bodies]

    def post(item):
        if local.client is None:
            local.client = httpx.Client(timeout=10)
        body, headers = item
        started = time.perf_counter()
        response = local.client.post(url, content=body, headers=headers)
        return time.perf_counter() - started, response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        results = list(pool.map(post, signed))
    elapsed = time.perf_counter() - started
    failures = sum(1 for _, status in results if status != 200)
    return elapsed, sorted(latency for latency, _ in results), failures


WRK_SCRIPT = """
local requests = {%s}
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(args[1])
  sent = 0
end
function request()
  local index = (tid + sent * nthreads) %% #requests + 1
  sent = sent + 1
  local r = requests[index]
  return wrk.format("POST", nil, r.headers, r.body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_request(body: bytes) -> str:
    headers = ", ".join(f'["{name}"] = "{value}"' for name, value in _headers(body).items())
    return f"{{headers = {{{headers}}}, body = [==[{body.decode()}]==]}}"


def _post_all_wrk(args, url: str, bodies: list[bytes]) -> tuple[float, list[float], int]:
    """Signed, distinct deliveries sent by wrk for `--intake-seconds`: wrk is native code, so the
    load generator takes far less of the two cores than Python client threads do. Pass enough
    `--deliveries` that none is sent twice (a repeat would take the cheaper duplicate path)."""
    threads = 2
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ",\n".join(_lua_request(body) for body in bodies))
    try:
        output = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{args.clients}", f"-d{args.intake_seconds:g}s", "--latency", "-s", script.name, url, "--",
             str(threads)],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    requests, duration_us, errors, p50_us, p99_us = (int(value) for value in line.split()[1:])
    if requests > len(bodies):
        raise SystemExit(f"wrk sent {requests} requests for {len(bodies)} deliveries: raise --deliveries")
    # wrk reports percentiles, not every latency: hand back a two-point distribution that the
    # caller's median / 99th-percentile reading reproduces.
    tail = requests - int(requests * 0.99) + 1  # the entries at and above the 99th-percentile index
    latencies = [p50_us / 1e6] * (requests - tail) + [p99_us / 1e6] * tail
    return duration_us / 1e6, sorted(latencies), errors


def _query(args, sql: str, params=()):
    with psycopg.connect(f"{args.server_url}/{DATABASE}") as conn:
        return conn.execute(sql, params).fetchone()


def _start_worker(args) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "loyalnest", "worker", "-P", "solo", "-Q", "default,notifications,analytics,shopify", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=_env(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _pending(args) -> int:
    return _query(args, "SELECT count(*) FROM webhook_inbox WHERE status = 'received'")[0]


def run(args) -> dict:
    figures: dict = {
        "command": "python bench/run.py webhooks --repeat=3",
        "setup": f"gunicorn {args.web_workers} sync workers, {args.clients} keep-alive connections "
        f"({args.load_generator}), DB_CONN_MAX_AGE=600, "
        f"1 Celery worker -P solo; burst {args.burst_rate:g}/s for {args.burst_seconds:g} s",
    }
    next_order = 1
    with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        _manage(args, "migrate", "--verbosity=0")
        _manage(args, "shell", "-c", SETUP)
        url = f"http://127.0.0.1:{PORT}/shopify/webhooks"
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "loyalnest.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", str(args.web_workers),
             "--keep-alive", "30", "--log-level", "warning"],
            cwd=ROOT, env=_env(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            if not _wait(lambda: _reachable(url), 30):
                raise SystemExit("gunicorn did not start")
            for _ in range(args.repeat):
                redis.Redis.from_url(args.redis_url).flushdb()
                bodies = [_body(order_id) for order_id in range(next_order, next_order + args.deliveries)]
                next_order += args.deliveries
                _post_all(args, url, bodies[:100])  # warm every worker's connections
                send = _post_all_wrk if args.load_generator == "wrk" else _post_all
                elapsed, latencies, failures = send(args, url, bodies[100:])
                count = len(latencies)
                figures.setdefault("intake deliveries/s", []).append(round(count / elapsed))
                figures.setdefault("intake p50 ms", []).append(round(statistics.median(latencies) * 1000, 1))
                figures.setdefault("intake p99 ms", []).append(round(latencies[int(count * 0.99) - 1] * 1000, 1))
                figures.setdefault("intake non-200 answers", []).append(failures)

                worker = _start_worker(args)
                try:
                    if not _wait(lambda: _pending(args) == 0, 600):
                        raise SystemExit("the worker did not drain the inbox")
                finally:
                    worker.terminate()
                    worker.wait(timeout=30)
                first, last, done = _query(
                    args,
                    "SELECT min(processed_at), max(processed_at), count(*) FROM webhook_inbox "
                    "WHERE processed_at >= now() - interval '10 minutes' AND status = 'processed'",
                )
                figures.setdefault("processing orders/s per worker", []).append(
                    round(done / max((last - first).total_seconds(), 1e-3))
                )
            figures.update(_burst(args, url, next_order))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    return figures


def _reachable(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.TransportError:
        return False


def _burst(args, url: str, first_order: int) -> dict:
    """A steady rate with the worker running; then check nothing was lost or double-credited."""
    total = int(args.burst_rate * args.burst_seconds)
    orders = list(range(first_order, first_order + total))
    worker = _start_worker(args)
    latencies, statuses = [], []
    try:
        client = httpx.Client(timeout=10)
        started = time.perf_counter()
        for index, order_id in enumerate(orders):
            due = started + index / args.burst_rate
            time.sleep(max(0.0, due - time.perf_counter()))
            body = _body(order_id)
            sent = time.perf_counter()
            statuses.append(client.post(url, content=body, headers=_headers(body)).status_code)
            latencies.append(time.perf_counter() - sent)
        sent_for = time.perf_counter() - started
        drained = _wait(lambda: _pending(args) == 0, 120)
        drain_seconds = time.perf_counter() - started - sent_for
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    credited = _query(
        args,
        "SELECT count(*), count(DISTINCT idempotency_key) FROM points_transactions "
        "WHERE kind = 'earn' AND idempotency_key = ANY(%s)",
        ([f"order:{order_id}:earn" for order_id in orders],),
    )
    latencies.sort()
    return {
        "burst deliveries sent": total,
        "burst non-200 answers": sum(1 for status in statuses if status != 200),
        "burst p99 ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "burst drained": drained,
        "burst seconds to drain after the last delivery": round(drain_seconds, 2),
        "burst orders credited (distinct keys)": f"{credited[0]} ({credited[1]})",
    }
