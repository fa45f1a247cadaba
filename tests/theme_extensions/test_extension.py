"""The theme app extension itself: Shopify's theme-check, locales, script size, the shared hash,
and accessibility in headless Chromium with axe-core (LTR and RTL)."""

import gzip
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from apps.core.locales import LOCALES
from apps.theme_extensions.experiments import fnv1a, variant_assign
from apps.theme_extensions.rendering import widget_preview

ROOT = Path(__file__).resolve().parents[2]
EXTENSIONS = ROOT / "extensions"
EXTENSION = EXTENSIONS / "loyalnest-widgets"
NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


@needs_node
def test_theme_check_passes_without_errors():
    cli = EXTENSIONS / "node_modules" / "@shopify" / "theme-check-node" / "dist" / "cli.js"
    assert cli.exists(), "run `npm ci` in extensions/"
    done = subprocess.run(
        [NODE, str(cli), "loyalnest-widgets"], cwd=EXTENSIONS, capture_output=True, text=True, timeout=120, check=False
    )
    start = done.stdout.index("[")
    offenses, _end = json.JSONDecoder().raw_decode(done.stdout[start:])
    assert [o for o in offenses if o["severity"] == 0] == []  # 0 = error
    assert offenses == [], offenses  # warnings too


def test_every_locale_has_every_storefront_string():
    english = json.loads((EXTENSION / "locales" / "en.default.json").read_text())["loyalnest"]
    names = {"en": "en.default.json"} | {code: f"{code}.json" for code in LOCALES if code != "en"}
    for code, name in names.items():
        strings = json.loads((EXTENSION / "locales" / name).read_text())["loyalnest"]
        assert strings.keys() == english.keys(), code
        for key, text in strings.items():
            assert re.findall(r"\{\{\s*\w+\s*\}\}", text) == re.findall(r"\{\{\s*\w+\s*\}\}", english[key]), (code, key)
            if code != "en" and key not in ("tier_label",):
                assert text != english[key], (code, key)  # translated, not copied


def test_one_small_script_and_one_stylesheet():
    assets = sorted(p.name for p in (EXTENSION / "assets").iterdir())
    assert assets == ["loyalnest-widgets.css", "loyalnest-widgets.js"]
    assert len(gzip.compress((EXTENSION / "assets" / "loyalnest-widgets.js").read_bytes())) <= 10 * 1024
    css = (EXTENSION / "assets" / "loyalnest-widgets.css").read_text()
    # Logical properties only, so right-to-left pages mirror by themselves.
    assert not re.search(r"(margin|padding|border)-(left|right)|\b(left|right)\s*:", css)


def test_blocks_carry_the_seeds_aria_label_and_load_the_assets():
    for block in (EXTENSION / "blocks").glob("*.liquid"):
        source = block.read_text()
        schema = json.loads(source.split("{% schema %}")[1].split("{% endschema %}")[0])
        assert schema["javascript"] == "loyalnest-widgets.js" and schema["stylesheet"] == "loyalnest-widgets.css"
        assert "render 'loyalnest-balance'" in source, block.name
    assert "'loyalnest.view_points_balance' | t" in (EXTENSION / "snippets" / "loyalnest-balance.liquid").read_text()


def test_liquid_renders_only_app_owned_metafields_with_storefront_access():
    """Issue 9: what the blocks render comes from `$app:loyalnest`, which only LoyalNest can write
    (https://shopify.dev/docs/apps/build/security/storefront/store-settings-in-app-owned-metafields),
    each key with a definition in shopify.app.toml that lets Liquid read it, of the type we write."""
    import tomllib

    from apps.shopify.metafields import NAMESPACE, SHOP_CONFIG_KEYS
    from apps.shopify.metafields.spec import TYPES

    sources = [p.read_text() for folder in ("blocks", "snippets") for p in (EXTENSION / folder).glob("*.liquid")]
    reads = {
        (owner, namespace, key)
        for source in sources
        for owner, namespace, key in re.findall(r"\b(\w+)\.metafields(\[[^\]]+\]|\.\w+)\.(\w+)", source)
    }
    assert {(owner, key) for owner, _ns, key in reads} == {
        ("shop", "theme_extension_config"),
        ("customer", "points_balance"),
        ("customer", "vip_tier"),
    }
    assert {namespace for _owner, namespace, _key in reads} == {f"['{NAMESPACE}']"}
    definitions = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    for owner, _namespace, key in reads:
        # In shopify.app.toml, `<owner>.metafields.loyalnest.<key>` is `$app:loyalnest`.
        definition = definitions[owner]["metafields"][NAMESPACE.removeprefix("$app:")][key]
        assert definition["access"] == {"admin": "merchant_read", "storefront": "public_read"}, key
        assert definition["type"] == ("json" if key in SHOP_CONFIG_KEYS else TYPES[key]), key


@needs_node
def test_the_script_assigns_variants_exactly_as_the_server():
    variants = [
        {"id": "a", "placement": "cart_page", "weight": 30},
        {"id": "b", "placement": "home_page", "weight": 45},
        {"id": "c", "placement": "product_page", "weight": 25},
    ]
    visitors = [f"visitor-{i:04d}" for i in range(300)] + ["6001", "a1b2c3d4e5f6a1b2c3d4e5f6"]
    program = (
        "global.window = {}; global.document = {querySelectorAll: () => []};"
        f"require({str(EXTENSION / 'assets' / 'loyalnest-widgets.js')!r});"
        "const w = global.window.LoyalNestWidgets;"
        f"const visitors = {json.dumps(visitors)}; const variants = {json.dumps(variants)};"
        "console.log(JSON.stringify(visitors.map(v => [w.fnv1a('rewards_panel:' + v), w.assign('rewards_panel', v, variants).id])));"
    )
    # The script stops early on a page without widgets; expose its functions first for the test.
    source = (EXTENSION / "assets" / "loyalnest-widgets.js").read_text()
    assert "window.LoyalNestWidgets = { assign: assign, fnv1a: fnv1a };" in source
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "probe.js"
        patched = source.replace(
            "  var widgets = Array",
            "  window.LoyalNestWidgets = { assign: assign, fnv1a: fnv1a };\n  var widgets = Array",
            1,
        )
        (Path(tmp) / "widgets.js").write_text(patched)
        script.write_text(
            program.replace(str(EXTENSION / "assets" / "loyalnest-widgets.js"), str(Path(tmp) / "widgets.js"))
        )
        done = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60, check=True)
    from_js = json.loads(done.stdout)
    expected = [
        [fnv1a(f"rewards_panel:{v}"), variant_assign(widget="rewards_panel", visitor=v, variants=variants)["id"]]
        for v in visitors
    ]
    assert from_js == expected


# --- accessibility in headless Chromium ---------------------------------------------------------

AXE_RUNNER = """
<script>
window.addEventListener('load', function () {
  axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
    .then(function (results) {
      var out = document.createElement('pre');
      out.id = 'axe-results';
      out.textContent = JSON.stringify(results.violations.map(function (v) {
        return {id: v.id, impact: v.impact, nodes: v.nodes.map(function (n) { return n.target.join(' '); })};
      }));
      document.body.appendChild(out);
    });
});
</script>
"""


def storefront_page(locale: str) -> str:
    """A local storefront page with every block's markup (as the previews render it)."""
    css = (EXTENSION / "assets" / "loyalnest-widgets.css").read_text()
    axe = (EXTENSIONS / "node_modules" / "axe-core" / "axe.min.js").read_text()
    blocks = "\n".join(
        widget_preview(widget_config={"widget": name, "placement": "", "texts": {}, "colors": {}}, locale=locale)[
            "html"
        ]
        for name in ("points_display", "rewards_panel", "post_purchase", "sticky_bar")
    )
    direction = "rtl" if locale in ("ar", "he", "fa") else "ltr"
    return (
        f'<!doctype html><html lang="{locale}" dir="{direction}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>Test storefront</title>'
        f"<style>{css}</style></head><body><header><p>Test storefront</p></header>"
        f"<main><h1>Product</h1>{blocks}</main><script>{axe}</script>{AXE_RUNNER}</body></html>"
    )


def axe_violations(html: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "storefront.html"
        page.write_text(html, encoding="utf-8")
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
                f"--user-data-dir={tmp}/profile",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    match = re.search(r'<pre id="axe-results">(.*?)</pre>', done.stdout, re.S)
    assert match, done.stderr[-2000:]
    import html as html_module

    return json.loads(html_module.unescape(match.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("locale", ["en", "ar"])
def test_axe_finds_no_violations_on_the_storefront_page(locale):
    if not (EXTENSIONS / "node_modules" / "axe-core").exists():
        pytest.skip("axe-core is not installed (npm ci in extensions/)")
    assert axe_violations(storefront_page(locale)) == []


def test_the_rewards_panel_carries_the_wallet_buttons():
    """Hidden in Liquid until the widgets' answer lists them; the axe page above shows them."""
    block = (EXTENSION / "blocks" / "rewards_panel.liquid").read_text()
    assert "'loyalnest.wallet_apple_label' | t" in block and "'loyalnest.wallet_google_label' | t" in block
    assert block.count('type="button"') == 2 and "data-ln-wallet " in block
    page = storefront_page("en")
    assert 'aria-label="Export loyalty balance to Apple Wallet"' in page
    assert 'aria-label="Export loyalty balance to Google Wallet"' in page
    script = (EXTENSION / "assets" / "loyalnest-widgets.js").read_text()
    assert "contributions.wallet" in script and "window.location.assign(url)" in script
