"""`make run` uses SQLite: the migrations, the set-based receivers' raw SQL (INSERT … ON
CONFLICT DO NOTHING RETURNING, the score upsert) and the ranking reads work there too."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
from datetime import UTC, datetime
from apps.core.models import Merchant, ProgramSettings
from apps.core.tenancy import merchant_scope
from apps.gamification import selectors, services
from apps.gamification.models import Achievement, Badge, Streak, TeamLeaderboard, TeamMembership
from apps.core.models import Customer
from apps.shopify.webhooks.orders import order_update_parse, orders_sync

merchant = Merchant.objects.create(shop_domain="sqlite-smoke.myshopify.com", name="Smoke")
ProgramSettings.objects.create(merchant=merchant)


def order(number, month):
    moment = datetime(2026, month, 3, tzinfo=UTC).isoformat()
    return {"id": number, "updated_at": moment, "processed_at": moment, "financial_status": "paid",
            "currency": "USD", "total_price": "50.00", "customer": {"id": 77}}


with merchant_scope(merchant):
    Badge.objects.create(merchant=merchant, name={"en": "First"}, rule={"type": "first_purchase"})
    Badge.objects.create(merchant=merchant, name={"en": "Two months"}, rule={"type": "streak", "length": 2})
    cycle = selectors.current_cycle(merchant=merchant)
    team = services.team_create(merchant=merchant, actor=None, name={"en": "Red"}, cycle=cycle)
    Customer.objects.create(merchant=merchant, shopify_customer_id="77")
    TeamMembership.objects.create(merchant=merchant, customer=Customer.objects.get(merchant=merchant), team=team, cycle=cycle)
    for batch in ([order(1, 1), order(2, 2)], [order(1, 1), order(2, 2)]):  # the second batch: duplicates
        orders_sync(merchant=merchant, updates=[order_update_parse(merchant=merchant, payload=p) for p in batch])
    print("ACHIEVEMENTS", Achievement.objects.filter(merchant=merchant).count())
    print("STREAK", Streak.objects.get(merchant=merchant).current_count)
    print("SCORE", TeamLeaderboard.objects.get(merchant=merchant, team_id=team.pk).score)
    print("RANKING", [(row["rank"], row["name"], row["score"]) for row in selectors.team_ranking(merchant=merchant, cycle=cycle)])
    # The storefront widget's read: with the shopper lookup (the app proxy) and on its own.
    from apps.core.services import customer_get_or_create_by_shopify_id
    from apps.theme_extensions.registry import shopper_lookups
    shopper = customer_get_or_create_by_shopify_id(merchant=merchant, shopify_customer_id="77", also=shopper_lookups(merchant))
    for looked_up in (shopper.looked_up["gamification"], None):
        widget = selectors.widget_contribution(merchant=merchant, customer=shopper, locale="en", looked_up=looked_up)
        print("WIDGET", sorted(b["name"] for b in widget["badges"]), widget["streak"]["longest_count"])
"""


def test_gamification_runs_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'smoke.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.dev",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11"),
        "CELERY_BROKER_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11"),
    }
    for arguments in (["migrate", "--verbosity=0"], ["shell", "-c", SCRIPT]):
        done = subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["ACHIEVEMENTS"] == "2"
    assert lines["STREAK"] == "2"
    assert lines["SCORE"] == "100"
    assert lines["RANKING"] == "[(1, 'Red', 100)]"
    widget_lines = [line for line in done.stdout.splitlines() if line.startswith("WIDGET ")]
    assert widget_lines == ["WIDGET ['First', 'Two months'] 2"] * 2
