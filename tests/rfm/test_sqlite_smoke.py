"""`make run` uses SQLite: migrate, seed the demo store, score, train, forecast and backtest there."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(tmp_path, *arguments):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'smoke.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.dev",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11"),
        "RFM_CHURN_MIN_CUSTOMERS": "100",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_rfm_runs_end_to_end_on_sqlite(tmp_path):
    _manage(tmp_path, "migrate", "--verbosity=0")
    _manage(tmp_path, "seed_demo", "--customers=600", "--merchants=1", "--orders-per-customer=6")

    first = _manage(tmp_path, "rfm_refresh", "--shop=demo-loyalnest.myshopify.com", "--train", "--forecast")
    again = _manage(tmp_path, "rfm_refresh", "--shop=demo-loyalnest.myshopify.com", "--incremental")
    backtest = _manage(
        tmp_path, "rfm_backtest", "--shop=demo-loyalnest.myshopify.com", "--as-of=2026-06-01", "--horizon-days=60"
    )

    assert "(full)" in first and "trained" in first and "forecast" in first
    scored = int(first.split("scored ")[1].split()[0])
    assert scored > 300
    assert "(incremental)" in again
    assert "AUC:" in backtest and "baseline accuracy (everyone churns):" in backtest
