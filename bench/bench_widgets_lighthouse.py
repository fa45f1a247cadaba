"""Lighthouse performance score of a storefront page without and with every LoyalNest widget.

Two local pages, identical but for the widgets: a small product page, and the same page with the
four blocks' markup (as the previews render it), the extension's stylesheet and its deferred
script (which asks the app proxy for live data; the local server answers 404, as an unreachable
proxy would, and the widgets keep their first state). Both are served on loopback and measured by
Lighthouse (npm `lighthouse`, installed on first use into `--lighthouse-dir`) driving Debian's
Chromium, mobile emulation with simulated throttling, `--runs` times each, alternating.
The issue's target: the widgets cost at most 3 points (Shopify rejects more than 10).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extensions" / "loyalnest-widgets"
LIGHTHOUSE_VERSION = "12.8.2"
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync"
)

PRODUCT = """<header><p>Test storefront</p><nav><a href="#">Shop</a> <a href="#">About</a></nav></header>
<main><h1>Ceramic pour-over set</h1>
<svg width="320" height="240" role="img" aria-label="Product photo"><rect width="320" height="240" fill="#d9c7b0"/></svg>
<p>Hand-thrown stoneware dripper and carafe. Brews two cups in four minutes.</p>
<p><strong>$48.00</strong></p><button type="button">Add to cart</button>
{widgets}</main>"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def add_arguments(parser):
    group = parser.add_argument_group("widgets_lighthouse")
    group.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page and repetition")
    group.add_argument(
        "--lighthouse-dir",
        default=os.path.join(tempfile.gettempdir(), "loyalnest-lighthouse"),
        help="where lighthouse is installed with npm on first use",
    )


def _lighthouse(directory: str) -> Path:
    cli = Path(directory) / "node_modules" / "lighthouse" / "cli" / "index.js"
    if not cli.exists():
        Path(directory).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"lighthouse@{LIGHTHOUSE_VERSION}"],
            cwd=directory,
            check=True,
        )
    return cli


def _pages(directory: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalnest.settings.base")
    import django

    django.setup()
    from apps.theme_extensions.rendering import widget_preview

    blocks = "\n".join(
        widget_preview(widget_config={"widget": name, "placement": "", "texts": {}, "colors": {}}, locale="en")["html"]
        for name in ("points_display", "rewards_panel", "post_purchase", "sticky_bar")
    )
    head = '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Pour-over set</title>'
    (directory / "bare.html").write_text(f"{head}</head><body>{PRODUCT.format(widgets='')}</body></html>")
    (directory / "widgets.html").write_text(
        f'{head}<link rel="stylesheet" href="loyalnest-widgets.css"></head><body>'
        f'{PRODUCT.format(widgets=blocks)}<script src="loyalnest-widgets.js" defer></script></body></html>'
    )
    for asset in ("loyalnest-widgets.css", "loyalnest-widgets.js"):
        shutil.copy(EXTENSION / "assets" / asset, directory / asset)


def _score(cli: Path, url: str) -> dict:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            ["node", str(cli), url, "--only-categories=performance", "--output=json", "--output-path=stdout",
             "--quiet", f"--chrome-flags={CHROME_FLAGS} --user-data-dir={profile}"],
            capture_output=True, text=True, check=True, timeout=180,
            env={**os.environ, "CHROME_PATH": shutil.which("chromium") or "/usr/bin/chromium"},
        ).stdout  # fmt: skip
    report = json.loads(done)
    audits = report["audits"]
    return {
        "score": round(report["categories"]["performance"]["score"] * 100),
        "fcp": audits["first-contentful-paint"]["numericValue"],
        "lcp": audits["largest-contentful-paint"]["numericValue"],
        "tbt": audits["total-blocking-time"]["numericValue"],
        "cls": audits["cumulative-layout-shift"]["numericValue"],
    }


def run(args) -> dict:
    cli = _lighthouse(args.lighthouse_dir)
    with tempfile.TemporaryDirectory() as served:
        _pages(Path(served))
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=served))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        results = {"bare": [], "widgets": []}
        try:
            for _ in range(args.runs):
                for page in ("bare", "widgets"):
                    results[page].append(_score(cli, f"{base}/{page}.html"))
        finally:
            server.shutdown()
    figures = {"command": "python bench/run.py widgets_lighthouse --repeat=3", "lighthouse": LIGHTHOUSE_VERSION}
    for page, runs in results.items():
        figures[f"{page} performance score"] = statistics.median(r["score"] for r in runs)
        figures[f"{page} LCP ms"] = round(statistics.median(r["lcp"] for r in runs))
        figures[f"{page} TBT ms"] = round(statistics.median(r["tbt"] for r in runs))
        figures[f"{page} CLS"] = round(statistics.median(r["cls"] for r in runs), 3)
    figures["points lost to the widgets"] = figures["bare performance score"] - figures["widgets performance score"]
    return figures
