"""Time `seed_demo` into a throwaway PostgreSQL database: 100,000 customers, ~1,000,000 orders.

The database is migrated once as a template; each repetition loads into a fresh copy of it, so every
run starts from the same empty schema. Both databases are dropped at the end.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SEEDED = re.compile(r"(\d+) customers, (\d+) orders, (\d+) ledger entries")
PHASE = re.compile(r"^\s+(.+): ([\d.]+)s$")


def add_arguments(parser):
    group = parser.add_argument_group("seed_demo")
    group.add_argument("--customers", type=int, default=100_000)
    group.add_argument("--orders-per-customer", type=float, default=10)
    group.add_argument("--seed", type=int, default=1)
    group.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name); the bench creates loyalnest_bench on it",
    )


def _admin(server_url: str):
    return psycopg.connect(f"{server_url}/postgres", autocommit=True)


def _manage(database_url: str, *arguments: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def run(args) -> dict:
    name, template = "loyalnest_bench", "loyalnest_bench_template"
    command = [
        "seed_demo",
        f"--customers={args.customers}",
        f"--orders-per-customer={args.orders_per_customer:g}",
        f"--seed={args.seed}",
        "--verbosity=2",
    ]
    figures: dict = {"command": f"python manage.py {' '.join(command[:-1])}"}
    with _admin(args.server_url) as admin:
        figures["postgres"] = admin.execute("SHOW server_version").fetchone()[0]
        for database in (name, template):
            admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        admin.execute(f'CREATE DATABASE "{template}"')
        try:
            _manage(f"{args.server_url}/{template}", "migrate", "--verbosity=0")
            for _ in range(args.repeat):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                started = time.perf_counter()
                output = _manage(f"{args.server_url}/{name}", *command)
                seconds = time.perf_counter() - started
                customers, orders, entries = map(int, SEEDED.search(output).groups())
                figures.setdefault("seconds (whole process)", []).append(round(seconds, 2))
                figures.setdefault("rows per second", []).append(round((customers + orders + entries) / seconds))
                figures["rows"] = {"customers": customers, "orders": orders, "ledger entries": entries}
                for line in output.splitlines():
                    if match := PHASE.match(line):
                        figures.setdefault(f"phase {match[1]} (s)", []).append(float(match[2]))
        finally:
            for database in (name, template):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return figures
