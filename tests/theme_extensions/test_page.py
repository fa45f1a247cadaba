"""The embedded admin page /app/widgets/: configuration, preview per locale, A/B results."""

from apps.core.models import ProgramSettings
from apps.theme_extensions.services import widget_events_record
from tests.shopify_helpers import session_token


def page(client, staff, **params):
    token = session_token(staff.merchant.shop_domain, user_id=staff.shopify_user_id)
    query = "&".join(f"{k}={v}" for k, v in {"id_token": token, **params}.items())
    return client.get(f"/app/widgets/?{query}")


def test_page_shows_every_widget_with_a_preview_in_the_chosen_locale(client, owner, foreign):
    response = page(client, owner, preview_locale="he")

    assert response.status_code == 200
    html = response.content.decode()
    for name in ("rewards_panel", "points_display", "sticky_bar", "post_purchase"):
        assert f'data-widget-form="{name}"' in html
    assert 'dir="rtl"' in html and 'lang="he"' in html and "הצגת יתרת הנקודות" in html
    assert "Beta secret title" not in html
    assert response["Content-Security-Policy"].startswith(f"frame-ancestors https://{owner.merchant.shop_domain}")


def test_page_shows_ab_results_with_significance(client, owner, program):
    program.theme_extension_config = {
        "widgets": {
            "rewards_panel": {
                "widget": "rewards_panel",
                "placement": "cart_page",
                "enabled": True,
                "texts": {},
                "colors": {"accent": "#1f5199", "background": "#ffffff", "text": "#1a1a1a", "button_text": "#ffffff"},
                "variants": [
                    {"id": "cart", "placement": "cart_page", "weight": 50},
                    {"id": "home", "placement": "home_page", "weight": 50},
                ],
            }
        }
    }
    program.save()
    events = (
        [{"widget": "rewards_panel", "variant": "cart", "placement": "cart_page", "kind": "impression"}] * 1000
        + [{"widget": "rewards_panel", "variant": "cart", "placement": "cart_page", "kind": "click"}] * 100
        + [{"widget": "rewards_panel", "variant": "home", "placement": "home_page", "kind": "impression"}] * 1000
        + [{"widget": "rewards_panel", "variant": "home", "placement": "home_page", "kind": "click"}] * 150
    )
    widget_events_record(merchant=owner.merchant, visitor="visitor-0001", events=events, locale="en")

    html = page(client, owner).content.decode()

    assert 'data-variant="home"' in html and "Significant (p = 0.001)" in html
    assert ProgramSettings.objects.get(merchant=owner.merchant).theme_extension_config == program.theme_extension_config


def test_page_without_a_session_is_401(client, owner):
    response = client.get("/app/widgets/")
    assert response.status_code == 401
