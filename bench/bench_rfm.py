"""Time RFM on the demo store: 100,000 customers / ~1,000,000 orders on PostgreSQL.

The database (`loyalnest_bench_rfm`) is migrated and seeded once with `seed_demo`; each
repetition then runs in a fresh process: full rescoring (history rows included), churn
training (logistic regression and MLP, time split) and forecasting every customer. Peak memory
is the process's maximum resident set size. Redis db 7. The database is dropped at the end
unless `--keep-database`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
NAME = "loyalnest_bench_rfm"

CHILD = r"""
import json, resource, time
import django
django.setup()
from apps.core.models import Merchant
from apps.core.tenancy import merchant_scope
from apps.rfm import services
from apps.shopify.auth import DEMO_SHOP_DOMAIN

merchant = Merchant.objects.get(shop_domain=DEMO_SHOP_DOMAIN)
figures = {}
with merchant_scope(merchant):
    started = time.perf_counter()
    run = services.rfm_scores_refresh(merchant=merchant)
    figures["full rescoring (s)"] = time.perf_counter() - started
    figures["customers scored"] = run.customers_scored
    started = time.perf_counter()
    model = services.churn_model_train(merchant=merchant)
    figures["churn training (s)"] = time.perf_counter() - started
    figures["model"] = {"algorithm": model.algorithm, "auc": model.auc, "accuracy": model.accuracy,
                        "baseline_accuracy": model.baseline_accuracy, "customers": model.customers}
    started = time.perf_counter()
    forecasts = services.churn_forecast(merchant=merchant)
    figures["forecasting all customers (s)"] = time.perf_counter() - started
    figures["customers forecast"] = len(forecasts)
figures["peak memory (MiB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("FIGURES " + json.dumps(figures))
"""


def add_arguments(parser):
    group = parser.add_argument_group("rfm")
    group.add_argument("--rfm-customers", type=int, default=100_000)
    group.add_argument("--rfm-orders-per-customer", type=float, default=10)
    group.add_argument("--keep-database", action="store_true", help="Keep (and reuse) the seeded database.")
    group.add_argument(
        "--rfm-server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )


def _env(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/7",
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.dev",
    }


def _run(database_url: str, *command: str) -> str:
    done = subprocess.run(command, cwd=ROOT, env=_env(database_url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def run(args) -> dict:
    database_url = f"{args.rfm_server_url}/{NAME}"
    figures: dict = {}
    with psycopg.connect(f"{args.rfm_server_url}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [NAME]).fetchone()
        if not (exists and args.keep_database):
            admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{NAME}"')
            _run(database_url, sys.executable, "manage.py", "migrate", "--verbosity=0")
            _run(
                database_url,
                sys.executable,
                "manage.py",
                "seed_demo",
                f"--customers={args.rfm_customers}",
                f"--orders-per-customer={args.rfm_orders_per_customer:g}",
                "--merchants=1",
            )
            # Production tables have planner statistics; a freshly loaded one has none yet.
            with psycopg.connect(database_url, autocommit=True) as database:
                database.execute("VACUUM ANALYZE")
        try:
            for _ in range(args.repeat):
                output = _run(database_url, sys.executable, "-c", CHILD)
                sample = json.loads(output.split("FIGURES ", 1)[1])
                for key, value in sample.items():
                    if isinstance(value, float):
                        figures.setdefault(key, []).append(round(value, 3))
                    else:
                        figures[key] = value
        finally:
            if not args.keep_database:
                admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    return figures
