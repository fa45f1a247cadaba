"""The notification relay and senders against fake Klaviyo and Postscript on loopback.

Each repetition writes `--notifications` due outbox rows (half email through Klaviyo, half SMS
through Postscript, for subscribed shoppers), kicks the relay once and waits until every row is
`sent`. Throughput is rows / (last `sent_at` − kick). A real Celery worker (`--concurrency`
prefork processes, the machine has 2 cores) runs the relay (SKIP LOCKED claims, chunks of
NOTIFICATIONS_SEND_CHUNK_SIZE per send task) and the provider calls through the official
clients, breakers and all.

Uses the database `loyalnest_bench_notifications` and Redis db 13, both wiped first, and two
fake providers on free loopback ports.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "loyalnest_bench_notifications"
SHOP = "bench-notifications.myshopify.com"


def add_arguments(parser):
    group = parser.add_argument_group("notifications")
    group.add_argument("--notifications", type=int, default=4000, help="outbox rows per repetition")
    group.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (prefork, one per core)")
    group.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )
    group.add_argument(
        "--notifications-redis-url",
        default=os.environ.get("BENCH_NOTIFICATIONS_REDIS_URL", "redis://127.0.0.1:6379/13"),
    )


class _Provider(BaseHTTPRequestHandler):
    """Klaviyo's and Postscript's success answers, with keep-alive like the real services."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle and delayed ACKs stall each
    # keep-alive answer by ~40 ms and the benchmark measures TCP, not LoyalNest.
    disable_nagle_algorithm = True
    counter = {"requests": 0}

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.counter["requests"] += 1
        if self.path.startswith("/api/v2/message_requests"):
            payload, status = json.dumps({"id": f"msg_{self.counter['requests']}"}).encode(), 202
        else:
            payload, status = b"", 202
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def _env(args, provider_url: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.base",
        "DATABASE_URL": f"{args.server_url}/{DATABASE}",
        "DB_CONN_MAX_AGE": "600",
        "REDIS_URL": args.notifications_redis_url,
        "CELERY_BROKER_URL": args.notifications_redis_url,
        "NOTIFICATIONS_KLAVIYO_BASE_URL": provider_url,
        "NOTIFICATIONS_POSTSCRIPT_BASE_URL": provider_url,
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
    }


def _manage(env: dict, *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments[:1])} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


SETUP = f"""
from apps.core.models import Customer, Merchant, ProgramSettings
from apps.notifications.models import NotificationSettings
m = Merchant.objects.create(shop_domain={SHOP!r}, name="Bench")
ProgramSettings.objects.create(merchant=m)
NotificationSettings.objects.create(merchant=m, klaviyo_private_key="pk_bench", postscript_api_key="ps_bench")
Customer.objects.bulk_create([
    Customer(merchant=m, shopify_customer_id=str(9000000 + i), email=f"b{{i}}@example.com", phone="+15555550100",
             email_marketing_consent="subscribed", sms_marketing_consent="subscribed")
    for i in range(%(customers)d)
])
"""

# Outbox rows as notify() writes them (one per channel), then the kick; prints the kick time.
FILL_AND_KICK = """
import time
from django.utils import timezone
from django_scopes import scopes_disabled
from apps.core.models import Customer, Merchant
from apps.notifications.models import Notification
from apps.notifications.tasks import notifications_relay_task
with scopes_disabled():
    Notification.objects.all().delete()
    m = Merchant.objects.get()
    now = timezone.now()
    rows = []
    for c in Customer.objects.filter(merchant=m).order_by("id")[:%(customers)d]:
        for channel, provider in (("email", "klaviyo"), ("sms", "postscript")):
            rows.append(Notification(merchant=m, customer=c, channel=channel, provider=provider, type="badge_earned",
                locale="en", context={"badge": {"en": "Seasonal Star"}, "shop_name": "Bench"},
                idempotency_key=f"{c.pk}:{channel}:%(repetition)d", next_attempt_at=now))
    Notification.objects.bulk_create(rows, batch_size=2000)
kicked = time.time()
notifications_relay_task.delay()
print("KICKED", kicked)
"""


def _count_sent(conninfo: str) -> tuple[int, float | None]:
    with psycopg.connect(conninfo) as connection:
        sent, last = connection.execute(
            "SELECT count(*), extract(epoch FROM max(sent_at)) FROM notifications WHERE state = 'sent'"
        ).fetchone()
    return sent, (float(last) if last is not None else None)


def _start_worker(env: dict, concurrency: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115  (closed with the process)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "loyalnest",
            "worker",
            "-P",
            "prefork",
            "-Q",
            "default,notifications,analytics,shopify",
            "-c",
            str(concurrency),
            "-l",
            "info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready" not in log_path.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise SystemExit(f"the Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return worker


def run(args) -> dict:
    customers = max(1, args.notifications // 2)
    total = customers * 2
    redis.Redis.from_url(args.notifications_redis_url).flushdb()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = _env(args, f"http://127.0.0.1:{server.server_address[1]}")
    conninfo = f"{args.server_url}/{DATABASE}"
    figures: dict = {"notifications per repetition": total, "worker processes": args.concurrency}
    with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    worker = None
    try:
        _manage(env, "migrate", "--verbosity=0")
        _manage(env, "shell", "-c", SETUP % {"customers": customers})
        log_path = Path(tempfile.mkdtemp(prefix="bench-notifications-")) / "worker.log"
        worker = _start_worker(env, args.concurrency, log_path)
        for repetition in range(args.repeat):
            output = _manage(env, "shell", "-c", FILL_AND_KICK % {"customers": customers, "repetition": repetition})
            kicked = float(output.split("KICKED", 1)[1].split()[0])
            deadline = time.monotonic() + max(120, total / 20)
            while True:
                sent, last_sent = _count_sent(conninfo)
                if sent >= total:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {sent} of {total} notifications sent; worker log: {log_path}")
                time.sleep(0.2)
            seconds = last_sent - kicked
            figures.setdefault("seconds to send all", []).append(round(seconds, 2))
            figures.setdefault("notifications per second", []).append(round(total / seconds, 1))
        figures["provider requests (all repetitions)"] = _Provider.counter["requests"]
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        server.shutdown()
        with psycopg.connect(f"{args.server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    return figures
