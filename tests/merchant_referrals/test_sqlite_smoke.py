"""`make run` uses SQLite: the referral program migrates and runs end to end there too."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from datetime import timedelta
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled
from apps.core.models import Merchant
from apps.merchant_referrals import selectors, services
from apps.merchant_referrals.models import MerchantReferral, MerchantReferralOwner, MerchantReferralReward

with scopes_disabled():
    advocate = Merchant.objects.create(shop_domain="smoke-advocate.myshopify.com", name="Advocate", installed_at=timezone.now())
    referred = Merchant.objects.create(shop_domain="smoke-referred.myshopify.com", name="Referred", installed_at=timezone.now())
    link, created = services.merchant_referral_link_create(merchant=advocate)
    response = Client(HTTP_USER_AGENT="Mozilla/5.0 Firefox/130.0").get(f"/r/{link.code}")
    assert response.status_code == 302, response.status_code
    referral = services.merchant_referral_attribute(referred=referred, code=link.code)
    for shop in (advocate, referred):
        MerchantReferralOwner.objects.create(merchant=shop, owner_hash=shop.pk, checked_at=timezone.now())
    MerchantReferral.objects.filter(pk=referral.pk).update(created_at=timezone.now() - timedelta(days=31))
    Merchant.objects.filter(pk=referred.pk).update(installed_at=timezone.now() - timedelta(days=32))
    report = services.merchant_referrals_advance()
    today = timezone.now().date()
    analytics = selectors.merchant_referral_analytics(merchant=advocate, start=today, end=today)
    print("report", report["completed"], "rewards", MerchantReferralReward.objects.count(),
          "clicks", analytics["clicks"], "conversions", analytics["conversions"])
"""


def test_the_referral_program_runs_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'smoke.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "loyalnest.settings.dev",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11"),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ALLOWED_HOSTS": "testserver",
    }
    for arguments in (["migrate", "--verbosity=0", "--skip-checks"], ["shell", "-c", SCRIPT]):
        done = subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "report 1 rewards 1 clicks 1 conversions 1" in done.stdout
