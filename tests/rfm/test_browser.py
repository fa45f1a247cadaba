"""The RFM page in headless Chromium (a live server in another thread, so tenant scopes are
enforced as in production): the chart draws from our own Chart.js copy next to its table."""

import shutil
import subprocess
import tempfile

import pytest

from apps.core.tenancy import merchant_scope
from apps.rfm import services
from tests.shopify_helpers import session_token

from .conftest import NOW, build_history

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium package"),
    pytest.mark.django_db(transaction=True),
]


def _dom(url: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=8000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    return done.stdout


def test_the_distribution_chart_is_drawn_next_to_its_table(live_server, analyst):
    merchant = analyst.merchant
    build_history(merchant, customers=60, seed=41)
    with merchant_scope(merchant):
        services.rfm_scores_refresh(merchant=merchant, now=NOW)

    token = session_token(merchant.shop_domain, user_id=analyst.shopify_user_id)
    dom = _dom(f"{live_server.url}/app/rfm/?id_token={token}")

    assert 'data-table="distribution"' in dom
    # The chart box is revealed only once Chart.js has loaded and drawn.
    assert '<div class="chart" data-chart="distribution">' in dom


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_pages_inline_script_is_valid_javascript(client, analyst, tmp_path):
    import re

    token = session_token(analyst.merchant.shop_domain, user_id=analyst.shopify_user_id)
    html = client.get("/app/rfm/", {"id_token": token}).content.decode()
    script = tmp_path / "page.js"
    script.write_text("\n".join(re.findall(r"<script>(.*?)</script>", html, re.S)))

    done = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)

    assert "start-experiment" in html and done.returncode == 0, done.stderr
